"""One lifecycle for every long job (training runs, judging jobs, exports).

    models.Job           the abstract model each kind of job inherits: status, claim,
                         heartbeat, phase and done/total, cancel request, attempts, error
    lifecycle            claim, progress, finish (the one place a job ends), cancel, retry,
                         and the stale sweep
    tasks.JobTask        the base Celery task: claims, runs the work, records how it ended;
                         a repeated delivery of the same message runs nothing
    tasks.sweep_stale_jobs   the beat's periodic task (config/celery.py)
    workers              which Celery workers are alive and which queues they consume, on
                         every host (in DUET_REDIS_URL's Redis, else files under DUET_VAR_DIR)
"""
