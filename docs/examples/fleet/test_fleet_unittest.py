"""The same sandbox without pytest's fixtures: `SandboxServer` as a context manager, here in a
unittest TestCase (scripts use it the same way: `with SandboxServer() as sandbox: ...`)."""

from __future__ import annotations

import unittest

from fleet import FleetClient

from mock_server.testing import SandboxServer


class FleetTest(unittest.TestCase):
    sandbox: SandboxServer

    @classmethod
    def setUpClass(cls) -> None:
        cls.sandbox = SandboxServer(apis=["nurosentrix"]).start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sandbox.stop()

    def setUp(self) -> None:
        self.sandbox.reset()

    def test_create_then_wait_until_active(self) -> None:
        token = self.sandbox.token("nurosentrix")
        app = FleetClient(self.sandbox.base_url("nurosentrix"), token, sleep=self.sandbox.clock.advance)
        server = app.create_server("web-1")
        self.assertEqual(app.wait_until_active(server["id"])["status"], "active")
        polls = self.sandbox.requests("nurosentrix", method="GET", path=f"/servers/{server['id']}")
        self.assertEqual(len(polls), 6)  # provisioning at 0..4 s of the sandbox's clock, active at 5 s


if __name__ == "__main__":
    unittest.main()
