# syntax=docker/dockerfile:1
# The grader image: the course at this commit, installed from requirements.lock exactly as
# `python3 course.py install` does on a laptop, with bubblewrap, as a non-root user.
#
#   docker build -t course-grader .
#   docker build -t course-grader --build-arg COURSE_COMMIT=$(git rev-parse HEAD) \
#       --build-arg COURSE_TORCH="torch --index-url https://download.pytorch.org/whl/cpu" .
#
# It is the image of `--sandbox docker`/`podman` (COURSE_GRADER_IMAGE=course-grader) and of
# Dask workers (dask-kubernetes, dask-jobqueue). `docker run course-grader autograde ...` runs
# `python -m grader autograde ...`; a command (python, dask, sh) runs as it is.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: resolves and installs everything into /opt/course/.venv ----------------------
FROM ${PYTHON_IMAGE} AS builder
# Empty: the lock's torch (on Linux the CUDA build, what students get). The CPU-only build
# makes a much smaller image; the rest of the lock is installed either way.
ARG COURSE_TORCH=""
ENV COURSE_TORCH=${COURSE_TORCH} \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/course
# The whole repository (see .dockerignore): the packages, requirements.lock, and solutions/,
# which the grading process reads the hidden tests and setup cells from.
COPY . .
RUN python3 course.py install \
    && rm -f .venv/constraints.txt \
    && find /opt/course -name __pycache__ -prune -exec rm -rf {} + \
    && chmod -R a+rX /opt/course

# ---- runtime: the same Python, the installed course, bubblewrap; no compilers, no curl/wget ----
FROM ${PYTHON_IMAGE} AS runtime
ARG COURSE_COMMIT=unknown
LABEL org.opencontainers.image.title="course-grader" \
      org.opencontainers.image.description="Autograder of the deep-learning course (python -m grader)" \
      org.opencontainers.image.revision="${COURSE_COMMIT}"
# bubblewrap: the grading sandbox; libpq5: the PostgreSQL client library psycopg loads.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap libpq5 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin grader
COPY --from=builder /opt/course /opt/course
ENV PATH=/opt/course/.venv/bin:${PATH} \
    MPLBACKEND=Agg \
    PYTHONDONTWRITEBYTECODE=1 \
    COURSE_COMMIT=${COURSE_COMMIT}
USER grader
WORKDIR /home/grader
ENTRYPOINT ["/opt/course/docker/entrypoint.sh"]
CMD ["--help"]
