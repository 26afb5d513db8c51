-- Tags of a run (Experiment.submit(..., tags={...}) in Azure ML): user labels, unlike the
-- properties headrace records (git information). Searchable with get_runs(tags=...).
ALTER TABLE runs ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
