"""session_store under load: customers logged in with a session, as the browsable API logs
them in, asking for the ping and their first page of orders with the session cookie
(shop/bench/scenarios/session_store.py). The login itself goes to the side's store: a session
made on one side is unknown to the other.

read_replica is held off, as in the bench: the session and the user are read on the primary.
"""

from locust import task

from loadtests.common import PASSWORD, TechniqueUser, customer, json_body
from shop.bench import holds

LOGIN = "/api/auth/login/"


class SessionStoreUser(TechniqueUser):
    technique = "session_store"

    def on_start(self) -> None:
        super().on_start()
        self.logged_in = self.session_login(customer())

    def session_login(self, username: str) -> bool:
        """The login form: GET it for the CSRF cookie, POST it back with the token; the form
        redirects to `next`, the ping, which says whether the session logged them in."""
        headers = self.toggles(**holds.SESSION_STORE)
        self.client.get(LOGIN, headers=headers, name=f"learn: {LOGIN}")
        csrf = self.client.cookies.get("csrftoken", "")
        form = {
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": csrf,
            "next": "/api/perf/ping/",
        }
        with self.client.post(
            LOGIN,
            data=form,
            headers={**headers, "Referer": f"{self.host}{LOGIN}"},
            name=f"learn: {LOGIN} (session login)",
            catch_response=True,
        ) as response:
            if response.status_code == 200 and json_body(response).get("authenticated"):
                response.success()
                return True
            response.failure(f"session login as {username}: HTTP {response.status_code}")
            return False

    @task
    def ping(self) -> None:
        if self.logged_in:
            self.client.get(
                "/api/perf/ping/",
                headers=self.toggles(**holds.SESSION_STORE),
                name="session_store: /api/perf/ping/",
            )

    @task
    def order_history(self) -> None:
        if self.logged_in:
            self.client.get(
                "/api/orders/?page_size=20",
                headers=self.toggles(**holds.SESSION_STORE),
                name="session_store: /api/orders/?page_size=20",
            )
