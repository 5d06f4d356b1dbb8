"""The PostgreSQL cluster behind the local tracking server (:mod:`ops.tracking_server`).

One cluster in a project-local data directory, run with the machine's own PostgreSQL programs
(Debian: ``/usr/lib/postgresql/<version>/bin``, not on PATH; ``make postgres`` installs them):
initialised once with ``initdb``, started and stopped with ``pg_ctl``, listening on 127.0.0.1
only with its unix socket in a directory of its own, and holding one role and database,
``mlflow``. Every loopback connection is trusted: anyone with a shell on this machine may use
the database, which is what local and development use needs, and no more.

PostgreSQL refuses to run as root. As root (this project's CI), its programs run as the Debian
``postgres`` system user through ``runuser``, its directories are handed to that user, and every
directory above them must be one it can enter (checked, with the fix named).

After a kill, ``postmaster.pid`` and the socket's lock file stay behind, and the id they hold may
by then name another process: :meth:`Cluster.pid` recognises the postmaster by its name and data
directory, and :meth:`Cluster.start` removes such stale files first.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from icans.errors import IcansError, InvalidInputError

HOST = "127.0.0.1"
DATABASE = "mlflow"  # the role and database the mlflow server uses
SUPERUSER = "postgres"  # the cluster's superuser (initdb -U) and, as root, the system user
BIN_GLOB = "/usr/lib/postgresql/*/bin"
STOP_TIMEOUT_S = 60
_SOCKET_PATH_MAX = 107  # sun_path of a unix socket, terminating NUL excluded


class TrackingServerError(IcansError, RuntimeError):
    """A step of starting or stopping the tracking server failed; the message names the step
    and quotes the end of the log that says why."""


def bin_dir() -> Path:
    """The directory of PostgreSQL's initdb and pg_ctl: Debian's newest version, else PATH's."""

    def version(d: str) -> tuple[int, ...]:
        return tuple(int(x) for x in Path(d).parent.name.split(".") if x.isdigit())

    for d in sorted(glob.glob(BIN_GLOB), key=version, reverse=True):
        if (Path(d) / "initdb").is_file() and (Path(d) / "pg_ctl").is_file():
            return Path(d)
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").is_file():
        return Path(on_path).parent
    raise TrackingServerError(
        f"PostgreSQL's server programs (initdb, pg_ctl) are not installed: none in {BIN_GLOB} "
        "nor on PATH. 'make postgres' installs Debian's postgresql package."
    )


@dataclass(frozen=True)
class Cluster:
    """The cluster: its data directory, socket directory, log file and TCP port."""

    pgdata: Path
    socket_dir: Path
    log: Path
    port: int

    @property
    def database_uri(self) -> str:
        """SQLAlchemy's URI of the ``mlflow`` database (psycopg 3 driver)."""
        return f"postgresql+psycopg://{DATABASE}@{HOST}:{self.port}/{DATABASE}"

    def pid(self) -> int | None:
        """The postmaster's process id, if ``postmaster.pid`` names a live postgres serving this
        data directory; None otherwise (not running, or a stale file left by a kill)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
            proc = psutil.Process(pid)
            if (
                proc.status() != psutil.STATUS_ZOMBIE
                and proc.name() in ("postgres", "postmaster")
                and str(self.pgdata) in proc.cmdline()
            ):
                return pid
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def start(self) -> None:
        """Initialise the cluster if it never was, start it (it is not running), and create
        the role and database ``mlflow`` if missing."""
        programs = bin_dir()
        check_free_port(self.port, "tracking_db_port")
        self._prepare()
        if not (self.pgdata / "PG_VERSION").is_file():
            for leftover in self.pgdata.iterdir():  # of an initdb that was interrupted
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            initdb = [str(programs / "initdb"), "--pgdata", str(self.pgdata)]
            initdb += ["--username", SUPERUSER, "--auth-local", "trust", "--auth-host", "trust"]
            initdb += ["--encoding", "UTF8", "--locale", "C"]
            self._run("initialising the PostgreSQL cluster (initdb)", initdb)
        options = (
            f"-c listen_addresses={HOST} -c port={self.port} "
            f"-c unix_socket_directories={shlex.quote(str(self.socket_dir))}"
        )
        pg_ctl = [str(programs / "pg_ctl"), "start", "--pgdata", str(self.pgdata), "--wait"]
        pg_ctl += ["--timeout", "60", "--log", str(self.log), "-o", options, "--silent"]
        self._run(f"starting PostgreSQL on {HOST}:{self.port}", pg_ctl)
        self.create_database()

    def stop(self) -> bool:
        """``pg_ctl stop -m fast``, then wait until the postmaster (and so every backend) is
        gone; whether it was running."""
        postmaster = self.pid()
        if postmaster is None:
            return False
        pg_ctl = [str(bin_dir() / "pg_ctl"), "stop", "--pgdata", str(self.pgdata)]
        pg_ctl += ["--mode", "fast", "--wait", "--timeout", str(STOP_TIMEOUT_S), "--silent"]
        self._run("stopping PostgreSQL (pg_ctl stop -m fast)", pg_ctl)
        try:
            psutil.Process(postmaster).wait(timeout=STOP_TIMEOUT_S)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            raise TrackingServerError(
                f"PostgreSQL (PID {postmaster}) is still running {STOP_TIMEOUT_S} s after "
                f"pg_ctl stop{tail(self.log)}"
            ) from None
        return True

    def create_database(self) -> None:
        """The role and database ``mlflow``, created once."""
        import psycopg

        try:
            with psycopg.connect(
                host=HOST, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
            ) as conn:
                role = "SELECT 1 FROM pg_roles WHERE rolname = %s"
                if not conn.execute(role, [DATABASE]).fetchone():
                    conn.execute(f"CREATE ROLE {DATABASE} LOGIN")
                db = "SELECT 1 FROM pg_database WHERE datname = %s"
                if not conn.execute(db, [DATABASE]).fetchone():
                    conn.execute(f"CREATE DATABASE {DATABASE} OWNER {DATABASE}")
        except psycopg.Error as exc:
            raise TrackingServerError(
                f"creating the database '{DATABASE}' on {HOST}:{self.port} failed: {exc}"
                f"{tail(self.log)}"
            ) from exc

    def _prepare(self) -> None:
        """The directories, owned by the user PostgreSQL runs as, and no stale lock files (the
        caller has checked that the postmaster is not running)."""
        root = self.pgdata.parent
        sock = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(sock)) > _SOCKET_PATH_MAX:
            raise InvalidInputError(
                "tracking_server_dir",
                str(root),
                f"a directory short enough for PostgreSQL's unix socket ({sock} has "
                f"{len(os.fsencode(sock))} bytes; at most {_SOCKET_PATH_MAX})",
            )
        for d in (self.pgdata, self.socket_dir, self.log.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        user = _db_user()
        if user is not None:
            _check_traversable(root, user)
            for p in (self.pgdata, self.socket_dir, self.log):
                os.chown(p, user.pw_uid, user.pw_gid)
        self.pgdata.chmod(0o700)  # PostgreSQL refuses a data directory others can read
        for lock in [self.pgdata / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*")]:
            lock.unlink(missing_ok=True)

    def _run(self, step: str, cmd: list[str]) -> None:
        """Run a PostgreSQL program (as the ``postgres`` user under root; from the server
        directory, which that user can enter); TrackingServerError naming the step, with the
        program's output and the log's tail, when it fails."""
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        done = subprocess.run(
            cmd, cwd=self.pgdata.parent, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-2000:]
            raise TrackingServerError(
                f"{step} failed (exit code {done.returncode}): {output}{tail(self.log)}"
            )


def _db_user() -> pwd.struct_passwd | None:
    """The system user PostgreSQL runs as when this process is root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise TrackingServerError(
            f"as root, PostgreSQL must run as the '{SUPERUSER}' system user (initdb refuses "
            "root), and there is none: 'make postgres' installs Debian's postgresql package, "
            "which creates it"
        ) from None


def _check_traversable(root: Path, user: pwd.struct_passwd) -> None:
    """PostgreSQL, running as ``user``, must be able to enter every directory down to its data."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for d in [root, *root.parents]:
        st = d.stat()
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise InvalidInputError(
                "tracking_server_dir",
                str(root),
                f"a directory the '{user.pw_name}' user (PostgreSQL runs as it under root) can "
                f"reach, but it cannot enter {d} ({stat.filemode(st.st_mode)}): choose another "
                f"directory, or allow it with 'chmod o+x {d}'",
            )


def check_free_port(port: int, field: str) -> None:
    """InvalidInputError naming the setting when its port is taken on 127.0.0.1 (by another
    program, or the server of another directory): the server could not bind it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind it
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise InvalidInputError(
                field, port, f"a free TCP port on {HOST} (it is taken: {exc.strerror})"
            ) from None


def tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log, to end an error message with (empty when there are none)."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"\n--- last lines of {log} ---\n" + "\n".join(text) if text else ""
