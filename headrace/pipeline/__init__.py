"""``azureml.pipeline`` names, for porting by changing the import prefix."""
