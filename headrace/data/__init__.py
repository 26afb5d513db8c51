"""``azureml.data`` names, for porting by changing the import prefix."""
