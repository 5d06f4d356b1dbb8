"""Read what a CDS Hooks call did not prefetch from the client's FHIR server (``fhirServer``).

FHIR REST reads and searches over HTTP(S) with the ``fhirAuthorization`` bearer token, JSON
(``application/fhir+json``). A search follows the server's ``next`` links (paging) while they
stay on the same server, up to :data:`MAX_PAGES`; the entries of all pages form one Bundle.
Only FHIR servers allow-listed for the calling client are contacted (the client file's
``fhir_servers``): a CDS call cannot make the service fetch from anywhere else.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from icans.errors import IcansError

MAX_PAGES = 20
TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 20 * 1024 * 1024


class FhirFetchError(IcansError):
    """The FHIR server could not give what the service needs; the message says what and why."""


class FhirServer:
    """A FHIR server at ``base`` read with a bearer ``token``."""

    def __init__(self, base: str, token: str, timeout_s: float = TIMEOUT_S):
        self.base = base.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def get(self, relative: str) -> dict:
        """A resource (``Patient/123``) or a search (``Observation?patient=123``) as one
        Bundle with every page's entries."""
        url = f"{self.base}/{relative.lstrip('/')}"
        first = self._get_json(url)
        if first.get("resourceType") != "Bundle":
            return first
        entries = list(first.get("entry", []))
        page, pages = first, 1
        while (nxt := _next_link(page)) is not None:
            if not nxt.startswith(self.base + "/") and not nxt.startswith(self.base + "?"):
                raise FhirFetchError(f"the next page of {relative} is on another server: {nxt}")
            if pages >= MAX_PAGES:
                raise FhirFetchError(f"{relative}: more than {MAX_PAGES} pages of results")
            page = self._get_json(nxt)
            entries += page.get("entry", [])
            pages += 1
        return {"resourceType": "Bundle", "type": "searchset", "entry": entries}

    def _get_json(self, url: str) -> dict:
        request = urllib.request.Request(
            url,
            headers={
                "Accept": "application/fhir+json",
                "Authorization": f"Bearer {self.token}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise FhirFetchError(f"GET {url}: the FHIR server answered {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise FhirFetchError(f"GET {url}: the FHIR server cannot be reached ({exc})") from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise FhirFetchError(f"GET {url}: response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            data = json.loads(body)
        except ValueError:
            raise FhirFetchError(f"GET {url}: the answer is not JSON") from None
        if not isinstance(data, dict):
            raise FhirFetchError(f"GET {url}: the answer is not a FHIR resource")
        return data


def _next_link(bundle: dict) -> str | None:
    for link in bundle.get("link", []) or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None
