-- The state vocabulary (contracts/status.py, services/runtime/states.py) enforced by the
-- database too: a typo in a status or phase is an error, not a run that never finishes.
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('Queued', 'Running', 'Completed', 'Failed', 'Canceled'));
ALTER TABLE steps ADD CONSTRAINT steps_status_check
    CHECK (status IN ('NotStarted', 'Queued', 'Running', 'Completed', 'Failed', 'Skipped',
                      'Canceled'));
ALTER TABLE steps ADD CONSTRAINT steps_phase_check
    CHECK (phase IN ('waiting', 'waiting_reuse', 'mounting', 'dispatched', 'running',
                     'uploading', 'done'));
ALTER TABLE step_attempts ADD CONSTRAINT step_attempts_outcome_check
    CHECK (outcome IS NULL OR outcome IN ('succeeded', 'failed', 'timed_out', 'error'));
