"""The security keystone: walk EVERY URL pattern of the root URLconf (included ones and
the admin too), build a concrete URL for each, and prove

(a) anonymous callers get a redirect to the login page (HTML) or a 401 (API), except
    the small PUBLIC allow-list;
(b) a logged-in user with no roles sees nothing of the registry on any page or API
    answer (the fixture's every string carries SECRET), writes nothing, and is kept out
    of the admin; a staff user with no roles sees no registry object in the admin either;
(c) the walk catches a forgotten gate: a temporary URLconf adding ungated views (and a
    route the walker cannot fill) is reported, while the real one reports nothing.

A pattern the walker cannot fill (an unknown converter, parameter name or regex) is a
violation, never a silent skip: teach `param_values` about it.
"""

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, converters, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RoutePattern

from access.identity.personal_tokens import issue_token
from access.models import Permission, ServiceAccount
from catalog.models import FeatureView, RegistryChange
from materialization.models import MaterializationJob
from serving.historical.models import HistoricalJob
from tests.unit.registry_data import build_registry

pytestmark = pytest.mark.django_db

SECRET = "secretw"
PROJECT = f"{SECRET}_proj"
# Routes anonymous users may reach (full route text as Django joins it). Every route under
# a public prefix of settings.LARDER_PUBLIC_PATHS must be named here (test_public_paths_are_listed).
PUBLIC = {
    "health",
    "accounts/login/",
    # the OIDC client: starts the code flow; takes the provider's answer
    "oidc/authenticate/",
    "oidc/callback/",
    # the built-in provider (LARDER_BUILTIN_IDP): each checks its own client or token, or
    # sends to its own sign-in page
    "idp/login/",
    "o/authorize/",
    "o/token/",
    "o/revoke_token/",
    "o/introspect/",
    "o/.well-known/openid-configuration",
    "o/.well-known/jwks.json",
    "o/userinfo/",
    "o/logout/",
}
# Admin routes an authenticated non-staff user may get a 200 from: the admin's own login form.
ADMIN_OPEN_TO_USERS = {"admin/login/"}
KNOWN_CONVERTERS = (
    converters.StringConverter,
    converters.PathConverter,
    converters.IntConverter,
    converters.SlugConverter,
    converters.UUIDConverter,
)
# URL words naming registry types (compared without "-", "_" and case).
SEGMENT_TYPES = {
    "project": "project",
    "projects": "project",
    "entity": "entity",
    "entities": "entity",
    "datasource": "data_source",
    "datasources": "data_source",
    "source": "data_source",
    "sources": "data_source",
    "featureview": "feature_view",
    "featureviews": "feature_view",
    "view": "feature_view",
    "views": "feature_view",
    "ondemandfeatureview": "on_demand_feature_view",
    "ondemandfeatureviews": "on_demand_feature_view",
    "odfv": "on_demand_feature_view",
    "odfvs": "on_demand_feature_view",
    "featureservice": "feature_service",
    "featureservices": "feature_service",
    "service": "feature_service",
    "services": "feature_service",
    "saveddataset": "saved_dataset",
    "saveddatasets": "saved_dataset",
    "dataset": "saved_dataset",
    "datasets": "saved_dataset",
    "permission": "permission",
    "permissions": "permission",
    "feature": "feature",
    "features": "feature",
}
UNFILLABLE = "UNFILLABLE"


class Unfillable(Exception):
    """The walker does not know how to build a URL for a pattern."""


@dataclass
class Route:
    """One URL pattern, with the chain of patterns leading to it from the root."""

    chain: list[URLPattern | URLResolver]
    pattern: URLPattern

    @property
    def text(self) -> str:
        return join_route(self.chain)

    @property
    def is_api(self) -> bool:
        return is_api_url("/" + self.text.lstrip("^"))

    @property
    def is_admin(self) -> bool:
        return self.text.startswith("admin/")


def join_route(chain) -> str:
    """The route text as Django's ResolverMatch.route spells it (a nested regex loses its `^`)."""
    text = ""
    for level in chain:
        part = str(level.pattern)
        text += part.removeprefix("^") if text else part
    return text


def is_api_url(path: str) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in settings.LARDER_API_PREFIXES)


def iter_routes(patterns, chain=()) -> Iterator[Route]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from iter_routes(p.url_patterns, (*chain, p))
        else:
            yield Route([*chain, p], p)


# -- filling parameters --------------------------------------------------------------------


def _norm(word: str) -> str:
    return word.replace("-", "").replace("_", "").lower()


def _type_before(literal_text: str) -> str | None:
    """The registry type named by the nearest URL word before a parameter."""
    words = [w for w in re.split(r"[/^$]", literal_text) if w and "<" not in w and "(" not in w]
    return SEGMENT_TYPES.get(_norm(words[-1])) if words else None


def _admin_model(literal_text: str):
    """The model of an admin route `admin/<app>/<model>/...`."""
    match = re.search(r"admin/(\w+)/(\w+)/", literal_text)
    if not match:
        return None
    try:
        return apps.get_model(match.group(1), match.group(2))
    except LookupError:
        return None


def param_values(name: str, before: str, registry: dict) -> list[str]:
    """Plausible values for parameter `name`, given the route text before it. Values
    name the fixture's own objects so that an ungated view would show them."""
    names = registry["names"]
    key = name.removesuffix("_name").removesuffix("_id") if name not in ("id", "object_id") else name
    if _norm(key) in SEGMENT_TYPES:
        return [names[SEGMENT_TYPES[_norm(key)]]]
    if name == "name":
        rtype = _type_before(before)
        if rtype is None:
            raise Unfillable(f"<{name}> after {before!r}: no registry word before it")
        return [names[rtype]]
    if name in ("object_id", "pk", "id"):
        if before.startswith("admin/r/"):  # view_on_site: content type of FeatureView, then its pk
            return [str(registry["feature_view"].pk)]
        model = _admin_model(before)
        if model is None:
            raise Unfillable(f"<{name}> after {before!r}: no model")
        first = model._default_manager.order_by("pk").first()
        return [str(first.pk) if first else "1"]
    if name == "job_id" and before.startswith("api/v1/historical-features/"):  # someone else's job: 404
        return [str(registry["historical_job"].pk)]
    if name == "job_id" and "materialization" in before:  # a materialization job of the fixture's view
        return [str(registry["materialization_job"].pk)]
    if name == "token_id":  # someone else's API token: the page must answer 404, never show it
        return [str(registry["api_token"].pk)]
    if name == "content_type_id":
        return [str(ContentType.objects.get_for_model(FeatureView).pk)]
    if name == "app_label":
        return [config.label for config in apps.get_app_configs()]
    if name == "url":
        return ["nope/"]
    raise Unfillable(f"unknown parameter <{name}> after {before!r}")


PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>[^()]*)\)")


def fill_level(level: URLPattern | URLResolver, before: str, registry: dict) -> list[str]:
    """Concrete texts for one level of a route (a path() route or a re_path() regex)."""
    text = str(level.pattern)
    if isinstance(level.pattern, RoutePattern):
        params = list(PARAM.finditer(text))
        options = []
        for m in params:
            conv = level.pattern.converters[m["name"]]
            if not isinstance(conv, KNOWN_CONVERTERS):
                raise Unfillable(f"unknown converter {type(conv).__name__} for <{m['name']}>")
            options.append(param_values(m["name"], before + text[: m.start()], registry))
        return [_substitute(text, params, combo) for combo in product(*options)]
    groups = list(GROUP.finditer(text))
    options = [[v for v in param_values(g["name"], before, registry) if re.fullmatch(g["regex"], v)] for g in groups]
    results = []
    for combo in product(*options):
        filled = _substitute(text, groups, combo).removeprefix("^").removesuffix("$")
        if re.search(r"[\\()\[\]*+?|{}^$]", filled):
            raise Unfillable(f"regex {text!r} is beyond the walker")
        results.append(filled)
    if not results:
        raise Unfillable(f"no value fits regex {text!r}")
    return results


def _substitute(text: str, matches: list[re.Match], values: tuple[str, ...]) -> str:
    pieces, last = [], 0
    for m, value in zip(matches, values, strict=True):
        pieces += [text[last : m.start()], value]
        last = m.end()
    return "".join([*pieces, text[last:]])


def build_urls(route: Route, registry: dict) -> list[str]:
    """Concrete paths for a route, each checked to resolve back to that very route."""
    texts = [""]
    for index, level in enumerate(route.chain):
        before = join_route(route.chain[:index])
        texts = [t + filled for t in texts for filled in fill_level(level, before, registry)]
    urls = []
    for text in texts:
        path = "/" + text
        try:
            match = resolve(path)
        except Resolver404 as exc:
            raise Unfillable(f"built {path!r} but it does not resolve") from exc
        if match.route != route.text:
            raise Unfillable(f"built {path!r} but it resolves to {match.route!r}")
        urls.append(path)
    return urls


# -- the checks ----------------------------------------------------------------------------


def leaked(response, request_strings: list[str]) -> bool:
    """Whether SECRET shows in the body or Location once the strings the caller sent
    (which may be echoed, as in "Entity X does not exist") are taken out."""
    text = response.content.decode(errors="replace") + " " + response.get("Location", "")
    for echoed in sorted({s for s in request_strings if s}, key=len, reverse=True):
        text = text.replace(echoed, "")
    return SECRET in text


def sent_strings(url: str, body: dict | None = None) -> list[str]:
    parts = urlsplit(url)
    strings = [unquote(seg) for seg in parts.path.split("/")]
    strings += [unquote(kv.partition("=")[2]) for kv in parts.query.split("&")]
    strings += [str(v) for v in (body or {}).values()]
    strings += [part for text in _nested_strings(body) for part in (text, *text.split(":"))]
    return strings


def _nested_strings(value) -> list[str]:
    """Every string inside a JSON body, keys included (feature refs, entity columns)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_nested_strings(k), *_nested_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _nested_strings(v)]
    return []


def feature_server_bodies(registry: dict) -> dict[str, list[dict]]:
    """POST bodies naming the fixture's objects for the routes that take their names from
    the body (Feast's feature-server endpoints), so an ungated one would show them."""
    w, names = SECRET, registry["names"]
    entities = {f"{w}_id": [1], f"{w}_input": [2]}
    at = ["2024-01-01T00:00:00Z"]
    return {
        "get-online-features": [
            {"project": PROJECT, "features": [f"{names['feature_view']}:{w}_feat"], "entities": entities},
            {"project": PROJECT, "features": [f"{names['on_demand_feature_view']}:{w}_out"], "entities": entities},
            {"project": PROJECT, "feature_service": names["feature_service"], "entities": entities},
        ],
        "push": [
            {
                "project": PROJECT,
                "push_source_name": registry["push_source"].name,
                "df": {f"{w}_id": [1], f"{w}_ts": at, f"{w}_pushed": [3]},
            }
        ],
        "write-to-online-store": [
            {
                "project": PROJECT,
                "feature_view_name": names["feature_view"],
                "df": {f"{w}_id": [1], f"{w}_ts": at, f"{w}_feat": [0.5], f"{w}_list": [["x"]]},
            }
        ],
    }


def historical_bodies(registry: dict) -> dict[str, list[dict]]:
    """A training-set request naming the fixture's view, service and on-demand view."""
    w, names = SECRET, registry["names"]
    entities = {f"{w}_id": [1], "event_timestamp": ["2024-01-01T00:00:00Z"], f"{w}_input": [2]}
    refs = [f"{names['feature_view']}:{w}_feat", f"{names['on_demand_feature_view']}:{w}_out"]
    return {
        "api/v1/historical-features": [
            {"project": PROJECT, "features": refs, "entities": entities},
            {"project": PROJECT, "feature_service": names["feature_service"], "entities": entities},
        ]
    }


def materialization_bodies(registry: dict) -> dict[str, list[dict]]:
    """Feast's materialize requests naming the fixture's view (and all views: null)."""
    view = registry["names"]["feature_view"]
    window = {"start_ts": "2024-01-01T00:00:00Z", "end_ts": "2024-01-02T00:00:00Z"}
    return {
        "materialize": [
            {"project": PROJECT, "feature_views": [view], **window},
            {"project": PROJECT, "feature_views": None, **window},
        ],
        "materialize-incremental": [{"project": PROJECT, "feature_views": [view], "end_ts": window["end_ts"]}],
    }


def materialization_job(view: FeatureView) -> MaterializationJob:
    """A finished materialization job of the fixture's view (the job pages and API show its name)."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    return MaterializationJob.objects.create(
        feature_view=view,
        project_name=view.project.name,
        view_name=view.name,
        start=at,
        end=at + timedelta(days=1),
        state="FAILED",
        error=f"{SECRET} error",
    )


def historical_job(owner: User) -> HistoricalJob:
    """A finished job of another user, its result naming the fixture (a Parquet file in a temp dir)."""
    result = Path(tempfile.mkdtemp(prefix="larder-gate-")) / "result.parquet"
    pq.write_table(pa.table({f"{SECRET}_feat": [0.5]}), result)
    return HistoricalJob.objects.create(
        project=PROJECT,
        user=owner,
        request={"project": PROJECT, "features": [f"{SECRET}fv:{SECRET}_feat"]},
        params={"project": PROJECT, "format": "json"},
        state=HistoricalJob.State.SUCCEEDED,
        result_path=str(result),
        finished_at=datetime.now(UTC),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )


def redirects_to_login(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)


def call(client: Client, method: str, url: str, body: dict | None = None, **headers):
    """One request; an exception inside the view is a finding, not a crash of the walk."""
    try:
        if method == "post":
            return client.post(url, body or {}, content_type="application/json", **headers), None
        return getattr(client, method)(url, **headers), None
    except Exception as exc:  # every failure is reported with its URL
        return None, f"{method.upper()} {url}: raised {type(exc).__name__}: {exc}"


def walk_violations(registry: dict) -> list[str]:
    """Every gate violation on every URL pattern of the current ROOT_URLCONF."""
    anonymous, user, staff = Client(), Client(), Client()
    user.force_login(registry["user"])
    staff.force_login(registry["staff"])
    query = "?" + urlencode({"project": PROJECT, "q": registry["names"]["feature_view"]})
    post_body = {"project": PROJECT, "name": registry["names"]["feature_view"]}
    bodies = feature_server_bodies(registry) | historical_bodies(registry) | materialization_bodies(registry)
    violations: list[str] = []

    for route in iter_routes(get_resolver().url_patterns):
        try:
            urls = build_urls(route, registry)
        except Unfillable as exc:
            violations.append(f"{UNFILLABLE} {route.text!r}: {exc}")
            continue
        for url in urls:
            violations += check_anonymous(anonymous, route, url)
            violations += check_user(user, route, url, query, post_body, bodies.get(route.text, []))
            if route.is_admin:
                violations += check_staff(staff, route, url)
    return violations


def check_anonymous(client: Client, route: Route, url: str) -> list[str]:
    found = []
    methods = ["get", "post"] if route.is_api else ["get"]
    for method in methods:
        response, error = call(client, method, url)
        if error:
            found.append(error)
            continue
        if route.text in PUBLIC:
            if leaked(response, sent_strings(url)):
                found.append(f"anonymous {method.upper()} {url}: public page shows registry data")
            continue
        if not (redirects_to_login(response) or response.status_code == 401):
            found.append(f"anonymous {method.upper()} {url}: answered {response.status_code}, not login/401")
        elif leaked(response, sent_strings(url)):
            found.append(f"anonymous {method.upper()} {url}: shows registry data")
    if route.is_api:
        response, error = call(client, "get", url, HTTP_AUTHORIZATION="Bearer forged")
        if error or response.status_code != 401:
            found.append(error or f"forged bearer GET {url}: answered {response.status_code}, not 401")
    return found


def check_user(
    client: Client, route: Route, url: str, query: str, post_body: dict, extra_bodies: list[dict] = ()
) -> list[str]:
    found = []
    attempts = [("get", url, None), ("get", url + query, None)]
    if route.is_api:
        attempts += [("post", url, post_body), ("delete", url + query, None)]
        attempts += [("post", url, body) for body in extra_bodies]
    for method, target, body in attempts:
        response, error = call(client, method, target, body)
        if error:
            found.append(f"no-role user: {error}")
            continue
        if response.status_code >= 500:
            found.append(f"no-role user {method.upper()} {target}: server error {response.status_code}")
        if leaked(response, sent_strings(target, body)):
            found.append(f"no-role user {method.upper()} {target}: shows registry data ({response.status_code})")
        if route.is_admin and route.text not in ADMIN_OPEN_TO_USERS and response.status_code not in (302, 403, 405):
            found.append(f"no-role user {method.upper()} {target}: admin answered {response.status_code}")
    return found


def check_staff(client: Client, route: Route, url: str) -> list[str]:
    response, error = call(client, "get", url)
    if error:
        return [f"no-role staff: {error}"]
    if response.status_code >= 500:
        return [f"no-role staff GET {url}: server error {response.status_code}"]
    if leaked(response, sent_strings(url)):
        return [f"no-role staff GET {url}: shows registry data ({response.status_code})"]
    return []


# -- fixtures and tests --------------------------------------------------------------------


@pytest.fixture
def registry():
    objects = build_registry(PROJECT, SECRET)
    RegistryChange.objects.create(
        project=objects["project"],
        project_name=PROJECT,
        object_type="feature_view",
        object_name=objects["feature_view"].name,
        action="create",
        diff={"description": f"{SECRET} diff"},
        actor="cli",
    )
    Group.objects.create(name=f"{SECRET}_role")  # the fixture permission's role; nobody holds it
    objects["user"] = User.objects.create_user("norole", password="pw")
    objects["staff"] = User.objects.create_user("norolestaff", password="pw", is_staff=True)
    # Identity objects of another user: the token page and the admin must keep them out of sight.
    owner = User.objects.create_user("tokenowner", password="pw")
    objects["api_token"] = issue_token(owner, f"{SECRET} token", 30)[0]
    objects["historical_job"] = historical_job(owner)
    objects["materialization_job"] = materialization_job(objects["feature_view"])
    ServiceAccount.objects.create(user=User.objects.create_user("svc"), description=f"{SECRET} service account")
    objects["names"] = {
        "project": PROJECT,
        "entity": objects["entity"].name,
        "data_source": objects["data_source"].name,
        "feature_view": objects["feature_view"].name,
        "on_demand_feature_view": objects["on_demand_feature_view"].name,
        "feature_service": objects["feature_service"].name,
        "saved_dataset": objects["saved_dataset"].name,
        "permission": objects["permission"].name,
        "feature": objects["feature_view"].fields.first().name,
    }
    return objects


def registry_counts() -> dict[str, int]:
    models = [m for m in apps.get_app_config("catalog").get_models()] + [Permission]
    return {m.__name__: m._default_manager.count() for m in models}


def test_every_url_is_gated(registry):
    before = registry_counts()
    routes = list(iter_routes(get_resolver().url_patterns))
    assert len(routes) > 100  # the admin, the API and the pages are all there
    assert walk_violations(registry) == []
    assert registry_counts() == before  # the no-role user's POSTs and DELETEs changed nothing


def test_public_paths_are_listed(registry):
    """LARDER_PUBLIC_PATHS opens whole prefixes (/o/, /oidc/): every route they open is in
    PUBLIC, so a new route under a public prefix is a decision made here, not an accident;
    and every PUBLIC route exists (the built-in provider is on in the test settings)."""
    from access.middleware import is_public_path

    routes = {route.text: route for route in iter_routes(get_resolver().url_patterns)}
    opened = {text for text, route in routes.items() if any(is_public_path(u) for u in build_urls(route, registry))}
    assert opened == PUBLIC
    assert settings.LARDER_BUILTIN_IDP


def test_the_walk_reaches_real_objects(registry, make_user):
    """The control: the same URLs show the fixture to a superuser, so the clean walk
    above is not clean merely because every URL missed (a 404 shows nothing either)."""
    admin = Client()
    admin.force_login(make_user("root", is_superuser=True, is_staff=True))
    query = "?" + urlencode({"project": PROJECT})
    blind = []
    for route in iter_routes(get_resolver().url_patterns):
        registry_api = (
            route.text.startswith("api/v1/")
            and "version" not in route.text
            and route.text != "api/v1/historical-features"  # POST only: checked with its bodies below
        )
        registry_admin = re.fullmatch(r"admin/(catalog|access)/\w+/(<path:object_id>/change/)?", route.text)
        if not (registry_api or registry_admin):
            continue
        for url in build_urls(route, registry):
            response = admin.get(url + (query if registry_api else ""))
            if response.status_code != 200 or not leaked(response, []):
                blind.append(f"{url}: {response.status_code}")
    for route_text, bodies in feature_server_bodies(registry).items():
        for body in bodies:  # the walk's feature-server bodies are served to a superuser
            response = admin.post("/" + route_text, body, content_type="application/json")
            shows = route_text != "get-online-features" or leaked(response, [])
            if response.status_code != 200 or not shows:
                blind.append(f"POST /{route_text} {body}: {response.status_code} {response.content[:200]!r}")
    for route_text, bodies in historical_bodies(registry).items():
        for body in bodies:  # past the gate to the engine, which names the fixture's (missing) Parquet source
            response = admin.post("/" + route_text, body, content_type="application/json")
            if response.status_code == 404 or not leaked(response, []):
                blind.append(f"POST /{route_text} {body}: {response.status_code} {response.content[:200]!r}")
    assert blind == []


def test_the_walk_catches_a_forgotten_gate(registry, settings):
    """A view listing FeatureView names without restrict, behind login (HTML), open to
    anyone with AllowAny (API), marked public, and a route with a converter the walker
    does not know: each is reported."""
    settings.LARDER_PUBLIC_PATHS = [*settings.LARDER_PUBLIC_PATHS, "/leaky-public"]
    with override_settings(ROOT_URLCONF="tests.unit.ungated_urls"):
        violations = walk_violations(registry)
    joined = "\n".join(violations)
    assert "no-role user GET /leaky-page: shows registry data" in joined
    assert "no-role user GET /api/v1/leaky: shows registry data" in joined
    assert "anonymous GET /leaky-public: answered 200, not login/401" in joined
    assert f"{UNFILLABLE} 'hex/<testhex:key>'" in joined
    assert all(any(marker in v for marker in ("leaky", "hex/")) for v in violations), (
        "only the planted views should be reported"
    )
