"""The gradebook on a real PostgreSQL server, with several graders writing at once.

A throw-away PostgreSQL cluster is started from the system's server binaries
(Debian package ``postgresql``, which ``python3 course.py test`` installs when
run as root) on 127.0.0.1 and a free port.  A batch is graded into it with
several workers, then three grader processes write the same batch into a
fresh database at the same moment; every grade must land exactly once, and
nbgrader's own commands must read the result.
"""

import csv
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader.autograde import autograde
from grader.fixtures import WRONG, make_small_class
from grader.notebook import source_notebooks
from grader.paths import ROOT, assignments

pytestmark = pytest.mark.slow

# One deliberately wrong function per assignment, that no other exercise calls.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    return Path(exe).parent if exe else None


def _as_user() -> list[str]:
    """initdb refuses to run as root: run the server as an unprivileged user."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if not runuser:
        pytest.skip("running as root without runuser(1): cannot start PostgreSQL as another user")
    user = "postgres"
    try:
        import pwd

        pwd.getpwnam(user)
    except KeyError:
        user = "nobody"
    return [runuser, "-u", user, "--"]


@pytest.fixture(scope="module")
def postgres():
    """(admin URL template, server) of a throw-away PostgreSQL cluster on 127.0.0.1."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install the Debian package "
                    "postgresql (python3 course.py test does it when run as root)")
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e .)")
    prefix = _as_user()
    base = Path(tempfile.mkdtemp(prefix="course-pg-"))
    if prefix:
        import pwd

        pw = pwd.getpwnam(prefix[2])
        os.chown(base, pw.pw_uid, pw.pw_gid)
    data, log = base / "data", base / "server.log"
    port = _free_port()
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust",
                             "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    opts = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c max_connections=50"
    started = subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log),
                                       "-w", "-t", "60", "start"], capture_output=True, text=True)
    if started.returncode != 0:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{text[-2000:]}")
    try:
        yield f"postgresql://grader@127.0.0.1:{port}/{{db}}"
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _create_db(url_template: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url_template.format(db="postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url_template.format(db=name)


def _query(url: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


AID = "01_knn" if "01_knn" in assignments() else (assignments() or ["01_knn"])[-1]
STUDENTS = ["ref_a", "ref_b", "wrong", "untouched"]


@pytest.fixture(scope="module")
def graded(postgres, sandbox, tmp_path_factory):
    """A batch graded into PostgreSQL by three workers at once."""
    if AID not in assignments():
        pytest.skip("no assignment to grade yet")
    root = tmp_path_factory.mktemp("pg")
    subs = make_small_class(root / "submitted", AID)
    url = _create_db(postgres, "gradebook")
    out = root / "out"
    records = autograde(subs, out, workers=3, sandbox=sandbox, db_url=url, log=lambda *_: None)
    return {"subs": subs, "out": out, "url": url, "records": records}


def _cells(aid):
    tests, manual = {}, {}
    for src in source_notebooks(aid):
        tests.update({(src.name, g): p for g, p in src.tests.items()})
        manual.update({(src.name, g): p for g, p in src.manual.items()})
    return tests, manual


GRADE_ROWS = """
    SELECT sa.student_id, a.name, n.name, c.name, g.auto_score, g.manual_score, g.needs_manual_grade
    FROM grade g
    JOIN submitted_notebook sn ON g.notebook_id = sn.id
    JOIN submitted_assignment sa ON sn.assignment_id = sa.id
    JOIN assignment a ON sa.assignment_id = a.id
    JOIN notebook n ON sn.notebook_id = n.id
    JOIN base_cell c ON g.cell_id = c.id
"""


def _assert_each_grade_once(url: str, expected_scores: dict[str, float]) -> None:
    tests, manual = _cells(AID)
    rows = _query(url, GRADE_ROWS)
    keys = [(s, a, n, c) for s, a, n, c, *_ in rows]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"grades recorded more than once: {sorted(dupes)}"
    want = {(s, AID, n, c) for s in expected_scores for (n, c) in (tests | manual)}
    assert set(keys) == want, (sorted(want - set(keys)), sorted(set(keys) - want))
    subs = _query(url, "SELECT student_id, count(*) FROM submitted_assignment GROUP BY student_id")
    assert dict(subs) == dict.fromkeys(expected_scores, 1)
    assert _query(url, "SELECT count(*) FROM assignment") == [(1,)]
    assert _query(url, "SELECT count(*) FROM student") == [(len(expected_scores),)]
    nb_rows = _query(url, "SELECT count(*) FROM submitted_notebook")
    assert nb_rows == [(len(expected_scores) * len(source_notebooks(AID)),)]
    auto = {}
    for s, _a, n, c, auto_score, _manual, needs_manual in rows:
        if (n, c) in tests:
            auto[s] = auto.get(s, 0.0) + auto_score
            assert not needs_manual
        elif s.startswith("untouched"):
            assert not needs_manual, (s, n, c)  # still "YOUR ANSWER HERE": nothing to grade
        else:
            assert needs_manual, (s, n, c)  # written answers wait for the instructor
    assert auto == pytest.approx(expected_scores)


def _expected():
    tests, _ = _cells(AID)
    full = sum(tests.values())
    gid, _ = WRONG[AID]
    lost = sum(p for (_, g), p in tests.items() if g == f"test_{gid}")
    return {"ref_a": full, "ref_b": full, "wrong": full - lost, "untouched": 0.0}


def test_every_grade_lands_exactly_once(graded):
    _assert_each_grade_once(graded["url"], _expected())
    with open(graded["out"] / "grades.csv") as f:
        csv_scores = {r["student_id"]: float(r["score"]) for r in csv.DictReader(f)}
    assert csv_scores == pytest.approx(_expected())


RACE = """
import json, sys, time
from pathlib import Path
from grader.gradebook import record_in_gradebook
records = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("*/*.json"))]
while time.time() < float(sys.argv[3]):
    time.sleep(0.005)
t0 = time.time()
record_in_gradebook(sys.argv[2], records)
print(json.dumps([t0, time.time()]))
"""


def test_concurrent_graders_write_each_grade_once(graded, postgres, tmp_path):
    """Three grader processes record the same class into one fresh database at the
    same moment: the tables are created once, and no student, submission or grade
    is duplicated or lost."""
    url = _create_db(postgres, "gradebook_concurrent")
    results = tmp_path / "results"
    expected = {}
    for i in range(10):  # a class of 40, so that the writers overlap for a while
        for sid, score in _expected().items():
            rec = json.loads((graded["out"] / "results" / sid / f"{AID}.json").read_text())
            rec["student_id"] = f"{sid}{i}"
            (results / rec["student_id"]).mkdir(parents=True)
            (results / rec["student_id"] / f"{AID}.json").write_text(json.dumps(rec))
            expected[rec["student_id"]] = score
    start = time.time() + 10  # after every process has imported nbgrader
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(results), url, str(start)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    spans = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert max(s[0] for s in spans) < min(s[1] for s in spans), f"the writers did not overlap: {spans}"
    _assert_each_grade_once(url, expected)


def test_nbgrader_reads_the_postgres_gradebook(graded, tmp_path):
    """nbgrader's own commands work on the gradebook the grader wrote."""
    nbgrader = Path(sys.executable).with_name("nbgrader")
    target = tmp_path / "export.csv"
    t0 = time.monotonic()
    res = subprocess.run([str(nbgrader), "export", f"--db={graded['url']}", f"--to={target}",
                          f"--CourseDirectory.root={tmp_path}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr + f" ({time.monotonic() - t0:.0f} s)"
    with open(target) as f:
        rows = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(f)}
    assert rows == pytest.approx(_expected())
