"""An app whose jobs.py declares jobs: installed only in processes started with
CLOCKWORK_TEST_DECLARING=1 (see tests/settings.py), for the real-process sync tests."""
