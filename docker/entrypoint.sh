#!/bin/sh
# Entrypoint of the grader image (Dockerfile). Arguments that name a command on PATH run as
# they are (the sandbox's `python -I -m grader.worker /job`, `dask worker ...`, `sh`);
# anything else is a grader command: `autograde ...` runs `python -m grader autograde ...`.
set -e
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ] && command -v "$1" >/dev/null 2>&1; then
    exec "$@"
fi
exec python -m grader "$@"
