"""The job queue: arq's Worker as acceptd runs it, for the worker's queue and the
dispatcher's alike.

- `leanworker.py`: arq's bookkeeping per job cut to what arq needs (one-script pickup,
  the try count in the payload, the in-progress marker as a renewed lease);
- `wakeable.py`: the poll loop paced by pub/sub wake-ups and the queue's head, riding out
  Redis outages;
- `lua/`: the pickup and retry scripts the worker runs on arq's keys.

It sits above `store` (it reads `store/keys.py` and `store/outages.py`) and below the
runtime and the roles that build workers from it. The queue entries themselves (arq's job
key and payload, the queue's sorted set) are written by the store's scripts in the same
step as a job's or a delivery's record, so their names stay in `store/keys.py` and their
payload in `store/arqjobs.py`.
"""
