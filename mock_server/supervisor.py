"""uvicorn's `Multiprocess` supervisor, worker k given socket k alone (`listeners.py`: one
SO_REUSEPORT socket per worker) instead of every worker the one socket list. The methods that
start a worker are uvicorn 0.55's, word for word but for `Process(self.config, self.sockets)`,
which becomes `self._process(slot)` (tests/test_worker_sockets.py compares them with the
installed uvicorn's). The parent holds every socket open, so a worker restarted after a crash
accepts what queued on its socket meanwhile. The number of workers is fixed: SIGTTIN and SIGTTOU
(add or remove one) are declined, as no socket waits for a new worker and a removed one's
queue would be lost."""

from __future__ import annotations

from socket import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger

from .listeners import Listening


def supervise(config: Config, listening: Listening) -> None:
    """Run `config.workers` workers: one socket each if given one each, else sharing the one."""
    if len(listening.sockets) == 1:
        Multiprocess(config, sockets=listening.sockets).run()
        return
    # Each worker holds the port's lock too (a duplicate of it goes to each worker with the
    # config, which is pickled for it), so workers orphaned by a `kill -9` of this process keep
    # the port theirs: a new `serve --workers` refuses rather than bind beside them.
    config.port_lock = listening.lock  # type: ignore[attr-defined]
    SocketPerWorker(config, listening.sockets).run()


class SocketPerWorker(Multiprocess):
    def __init__(self, config: Config, sockets: list[socket]) -> None:
        assert len(sockets) == config.workers, "one socket per worker"
        super().__init__(config, sockets)

    def _process(self, slot: int) -> Process:
        return Process(self.config, [self.sockets[slot]])

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = self._process(len(self.processes))
            process.start()
            self.processes.append(process)

    def restart_all(self) -> None:
        """Replaces each worker, bringing its replacement into service before retiring the old worker."""
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return

            new_process = self._process(idx)
            new_process.start()

            if not new_process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new_process.kill()
                new_process.join()
                if not self.should_exit.is_set():
                    logger.error(
                        f"New child process [{new_process.pid}] was not ready in time; "
                        f"keeping worker [{old_process.pid}] and aborting the restart."
                    )
                return

            old_process.terminate()
            old_process.join()
            self.processes[idx] = new_process

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return  # parent process is exiting, no need to keep subprocess alive

        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue

            process.kill()  # process is hung, kill it
            process.join()

            if process.exitcode == STARTUP_FAILURE:
                # The worker failed before it started serving, so the app, TLS or socket
                # bind is broken and would fail the same way on every restart.
                # See https://github.com/encode/uvicorn/discussions/2440.
                logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                self.should_exit.set()
                return

            if self.should_exit.is_set():
                return  # pragma: full coverage

            logger.info(f"Child process [{process.pid}] died")
            process = self._process(idx)
            process.start()
            self.processes[idx] = process

    def handle_ttin(self) -> None:
        logger.warning(f"Received SIGTTIN: declined, {FIXED}")

    def handle_ttou(self) -> None:
        logger.warning(f"Received SIGTTOU: declined, {FIXED}")


FIXED = "the workers have one listening socket each, their number fixed at start."
