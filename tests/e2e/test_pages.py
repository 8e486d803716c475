"""The pages as a person sees them, in headless Chromium, on the real running demo.

One ``vitrine demo`` (Mosquitto, SQLite, server, ingest, mobile_api, gateway
and a sped-up simulator) serves every test here. Before anyone touches the
phone page, the simulator's own app shoppers (registered with the server as the
retailer's app backend would) arrive on the staff dashboard with what they viewed
online and where it hangs. A phone then signs in as the demo
shopper, who viewed two products online (the demo posts those views as
Segment tracks), turns its consents on and checks in: the staff dashboard shows
the arrival card, the phone the guidance card, the analytics funnel counts the
visit. Switching staff recognition off on the phone means no staff card on
the next arrival. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from playwright import sync_api as playwright_sync

from tests.e2e.demo_process import RunningDemo, running_demo
from tests.support.services import require_service
from vitrine.contracts.app_token import token_of
from vitrine.contracts.facts import ShopperLeft, dump_fact, make_event_id
from vitrine.contracts.ids import DeviceToken, GatewayId, StoreId
from vitrine.contracts.topics import fact_topic
from vitrine.runtime.mqtt import make_client, parse_mqtt_url

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
STORE = "demo-rivoli"
#: The first product the demo shopper viewed online (LSX00-SKY-M, firmware_sim/data).
LINEN_SHIRT = "7001000000"
#: How long a live update may take to reach a page: fact → ingest → outbox →
#: MQTT → stream, on 2 shared cores with the simulator running.
LIVE_MS = 20_000

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        require_service("Chromium", "not installed (scripts/setup --browser)")
    workdir = tmp_path_factory.mktemp("demo")
    print(f"demo logs: {workdir / 'logs'}")  # shown with a failure; pytest keeps the last runs
    with running_demo(workdir, "--speed", "10", "--no-status") as running:
        yield running


@pytest.fixture(scope="module")
def browser(demo: RunningDemo) -> Iterator[object]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")  # type: ignore[attr-defined]


def _leave(demo: RunningDemo, secret_b64: str) -> None:
    """What the gateway publishes when the phone's beacon walks out of the store."""
    broker = next(line for line in demo.lines if line.startswith("Vitrine demo: broker "))
    url = broker.split()[3].rstrip(",")
    now = datetime.now(UTC)
    device = DeviceToken(f"{token_of(base64.b64decode(secret_b64), now.timestamp()):08x}")
    fact = ShopperLeft(
        event_id=make_event_id("e2e-left", device, now.isoformat()),
        store=StoreId(STORE),
        gateway=GatewayId("gw1"),
        occurred_at=now,
        device=device,
        device_kind="app",
    )
    client, props = make_client("e2e-leave", parse_mqtt_url(url))
    acked = threading.Event()
    client.on_publish = lambda *a: acked.set()
    target = parse_mqtt_url(url)
    client.connect(target.host, target.port, properties=props)
    client.loop_start()
    try:
        client.publish(fact_topic(StoreId(STORE), fact.kind), dump_fact(fact), qos=1)
        assert acked.wait(10), "ShopperLeft not acknowledged by the broker"
    finally:
        client.loop_stop()
        client.disconnect()


def _staff_alerts(demo: RunningDemo) -> list[dict[str, object]]:
    response = httpx.get(
        f"{demo.server}/v1/stores/{STORE}/staff/alerts",
        headers={"authorization": f"Bearer {demo.staff_token}"},
        timeout=10,
    )
    response.raise_for_status()
    alerts: list[dict[str, object]] = response.json()
    return alerts


def test_arrival_guidance_funnel_and_consent(demo: RunningDemo, browser: object) -> None:
    expect = playwright_sync.expect
    expect.set_options(timeout=LIVE_MS)
    staff_ctx = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    phone_ctx = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    staff = staff_ctx.new_page()
    phone = phone_ctx.new_page()
    for page in (staff, phone):
        page.on("pageerror", lambda e: print("page error:", e))
        page.on("console", lambda m: print("console:", m.type, m.text))

    # The staff dashboard, signed in by the token in the URL fragment, goes live.
    staff.goto(demo.urls["staff dashboard"])
    expect(staff.locator("#live")).to_have_text("live", timeout=LIVE_MS)
    assert "#token" not in staff.url, "the token must leave the address bar"
    expect(staff.locator("#store-name")).to_contain_text("Rivoli")

    # Simulated shoppers arrive on their own, with context, before the phone is opened.
    simulated = staff.get_by_test_id("arrival-card").filter(has_text="on the floor")
    expect(simulated.first).to_be_visible(timeout=LIVE_MS)
    expect(simulated.first.locator("li").first).to_contain_text("·")  # zone · rack
    sim_visits = {
        v
        for v in staff.get_by_test_id("arrival-card").evaluate_all(
            "cards => cards.map(c => c.dataset.visit)"
        )
    }
    assert sim_visits, "no simulated arrival"
    _shot(staff, "staff-simulated-arrivals")

    # The phone signs in as the demo shopper and turns every consent on.
    phone.goto(demo.urls["shopper phone"])
    phone.locator("#sign-in").click()
    switches = phone.locator("input[role=switch]")
    expect(switches).to_have_count(3)
    for purpose in ("guidance", "staff_recognition", "journey_profile"):
        switch = phone.locator(f"input[data-purpose={purpose}]")
        switch.check()
        expect(switch).to_be_checked()
        expect(switch).to_be_enabled()
    expect(phone.get_by_test_id("viewed")).to_contain_text("Linen shirt")

    # The readers have seen the women's floor (live stock on the map) before she comes in.
    women = staff.locator("rect[data-zone=floor-women]:not([data-items='0'])")
    expect(women).to_have_count(1, timeout=60_000)

    # Arrival: the phone's guidance card, the staff card of that visit with context.
    phone.locator("#check-in").click()
    guide = phone.get_by_test_id("guidance-card")
    expect(guide.first).to_contain_text("Linen shirt", timeout=LIVE_MS)
    first_visit = guide.first.get_attribute("data-visit")
    assert first_visit and first_visit not in sim_visits
    card = staff.locator(f"[data-testid=arrival-card][data-visit='{first_visit}']")
    expect(card).to_have_count(1, timeout=LIVE_MS)
    expect(card).to_contain_text("Linen shirt")
    expect(card).to_contain_text("Wrap dress")
    expect(card).to_contain_text("on the floor")
    _shot(staff, "staff-dashboard")
    _shot(phone, "phone")

    # Claim from the tablet.
    card.get_by_role("button", name="Claim", exact=True).click()
    expect(card.get_by_role("button", name=re.compile("Claimed"))).to_be_visible()

    # The funnel counts the visit for the product viewed online.
    analytics = staff_ctx.new_page()
    analytics.goto(demo.urls["analytics"])
    row = analytics.locator(f"[data-testid=funnel-row][data-product='{LINEN_SHIRT}']")
    # Simulated shoppers view and visit too: at least the demo shopper is counted.
    counted = re.compile(r"^[1-9]\d*$")
    expect(row.locator("[data-step=viewed_online] .n")).to_have_text(counted, timeout=LIVE_MS)
    expect(row.locator("[data-step=visited] .n")).to_have_text(counted, timeout=LIVE_MS)
    expect(analytics.locator("#kpi-identified")).not_to_have_text("–")
    _shot(analytics, "analytics")

    # Staff recognition off on the phone; she leaves and comes back.
    off = phone.locator("input[data-purpose=staff_recognition]")
    off.uncheck()
    expect(off).not_to_be_checked()
    expect(off).to_be_enabled()
    install = orjson.loads(phone.evaluate("localStorage.getItem('vitrine.install')"))
    _leave(demo, install["secret"])
    # The visit is closed once the phone has no current visit any more.
    phone.wait_for_function(
        """async () => {
            const t = JSON.parse(localStorage.getItem('vitrine.tokens'));
            const headers = {authorization: 'Bearer ' + t.access_token};
            const r = await fetch('/v1/me/visit', {headers});
            return (await r.json()).visit === null;
        }""",
        timeout=LIVE_MS,
        polling=250,
    )
    phone.locator("#check-in").click()
    second = phone.locator(f"[data-testid=guidance-card]:not([data-visit='{first_visit}'])")
    expect(second.first).to_be_visible(timeout=LIVE_MS)
    second_visit = second.first.get_attribute("data-visit")
    # Guidance and any staff alert of an arrival are committed in one transaction
    # (docs/engine.md): the guidance being out means the alert would be too.
    assert not [a for a in _staff_alerts(demo) if a["visit_id"] == second_visit]
    expect(staff.locator(f"[data-testid=arrival-card][data-visit='{second_visit}']")).to_have_count(
        0
    )
    expect(card).to_have_count(1)
    _shot(phone, "phone-second-visit")
    _shot(staff, "staff-after-consent-off")


def test_the_shopper_count_is_read_again_when_someone_arrives(
    demo: RunningDemo, browser: object
) -> None:
    """The map's "N shoppers in store" and the arrival cards agree: a card that arrives
    on the stream re-reads the count at once. The page's timers are frozen, so the
    5 s poll cannot do it (before: cards on screen, "0 shoppers in store" for up
    to a poll, for the whole of a quick demo walk-through)."""
    expect = playwright_sync.expect
    context = browser.new_context(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page = context.new_page()
    start = datetime.now(UTC)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=1))  # no page timer fires from here on
    map_reads: list[str] = []
    list_reads: list[str] = []

    def on_response(response: playwright_sync.Response) -> None:
        if response.ok and response.url.endswith(f"/{STORE}/map"):
            map_reads.append(response.url)
        elif response.ok and response.url.endswith(f"/{STORE}/staff/alerts"):
            list_reads.append(response.url)

    page.on("response", on_response)
    page.goto(demo.urls["staff dashboard"])
    expect(page.locator("#live")).to_have_text("live", timeout=LIVE_MS)
    expect(page.locator("#map p")).to_contain_text("shoppers in store", timeout=LIVE_MS)
    deadline = time.monotonic() + 5
    # Settled: the map read at load and on connecting, the alert list read on connecting.
    while time.monotonic() < deadline and (len(map_reads) < 2 or not list_reads):
        page.wait_for_timeout(50)  # not time.sleep: sync Playwright runs handlers only in its calls
    # The lists read on connecting are on screen: their cards are not fresh arrivals.
    expect(page.locator("body[data-lists-shown]")).to_be_attached(timeout=LIVE_MS)
    seen = page.get_by_test_id("arrival-card").evaluate_all("cs => cs.map(c => c.dataset.visit)")
    before = len(map_reads)

    fresh = page.locator(
        "[data-testid=arrival-card]" + "".join(f":not([data-visit='{v}'])" for v in seen)
    )
    # The simulator's app shoppers keep arriving on their own.
    expect(fresh.first).to_be_visible(timeout=60_000)
    deadline = time.monotonic() + LIVE_MS / 1000
    while time.monotonic() < deadline and len(map_reads) == before:
        page.wait_for_timeout(50)  # a time.sleep here never let on_response run
    assert len(map_reads) > before, "an arrival did not re-read the shopper count"
    expect(page.locator("#map p")).to_have_text(re.compile(r"^[1-9]\d* shoppers in store"))
    context.close()


def test_pages_need_a_staff_token(demo: RunningDemo, browser: object) -> None:
    expect = playwright_sync.expect
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page.goto(demo.urls["staff dashboard"].split("#", 1)[0])
    expect(page.locator("#token-input")).to_be_visible()
    stream = httpx.get(f"{demo.server}/v1/web/stores/{STORE}/stream", timeout=5)
    assert stream.status_code == 401
    foreign = httpx.get(
        f"{demo.server}/v1/web/stores/{STORE}/map",
        headers={"authorization": f"Bearer {demo.staff_token}"},
        timeout=5,
    )
    assert foreign.status_code == 200
    cross = httpx.get(
        f"{demo.server}/v1/web/stores/{STORE}/stream",
        headers={"authorization": f"Bearer {demo.staff_token}", "origin": "https://evil.example"},
        timeout=5,
    )
    assert cross.status_code == 403
    page.close()
