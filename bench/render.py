"""Personalized rendering of a starter template against bare MJML compilation of it, in one run.

The template is the abandoned-cart starter (delivery/templates/starters/):
eight sections, the name, a three-item cart loop, one conditional section,
three recommendations and the footer links. Each recipient gets a different
name, cart and plan. "Bare mjml2html" compiles the template's MJML (with
its Liquid in it, unrendered) once per recipient, which is the least a
pipeline that runs MJML per recipient pays; the render produces all four
parts (subject, preheader, HTML, text), and its figure includes the one
compilation of the version.

Rounds alternate the two, three each; the medians are printed, with their
ratio (target >= 2), then the render's rate in two processes at once (both
cores).

Usage: python -m bench.render [--recipients 10000]
"""

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mjml

from bench.common import ROOT, machine_reference
from delivery.templates import render as rendering
from delivery.templates.compiler import compile_template
from delivery.templates.model import Recipient, RecipientProfile, Sender, TemplateContent

ROUNDS = 3
TARGET = 2.0
STARTER = ROOT / "delivery" / "templates" / "starters" / "abandoned_cart.mjml"
SENDER = Sender("Northwind Outfitters", "12 Harbour Road, 20457 Hamburg, Germany")
NAMES = ["Ann", "Bo", "Chloé", "Dmitri", "Eve", "Farid", "Grace", "Hiro", "Ines", "Jon"]


def content() -> TemplateContent:
    return TemplateContent(
        subject='{{ profile.traits.first_name | default: "Hello" }}, your cart is waiting',
        preheader="Your items are saved for 48 hours",
        mjml=Path(STARTER).read_text(),
    )


def recipients(count: int) -> list[Recipient]:
    popular = [
        {"name": f"Best seller {i}", "price": "€29.00", "url": f"https://shop.example/b/{i}",
         "image_url": f"https://shop.example/img/b{i}.jpg"}
        for i in range(3)
    ]  # fmt: skip
    found = []
    for i in range(count):
        cart = [
            {"name": f"Product {i % 97 + k}", "price": f"€{10 + k * 7}.00", "quantity": 1 + k % 2,
             "url": f"https://shop.example/p/{i % 97 + k}",
             "image_url": f"https://shop.example/img/{i % 97 + k}.jpg"}
            for k in range(3)
        ]  # fmt: skip
        traits = {"first_name": NAMES[i % len(NAMES)], "plan": "pro" if i % 3 == 0 else "free"}
        profile = RecipientProfile(f"profile-{i}", traits, {"cart": cart})
        found.append(
            Recipient(
                profile,
                unsubscribe_url=f"https://cdp.example/u/{i:08x}",
                preferences_url=f"https://cdp.example/p/{i:08x}",
                recommendations={"popular": popular},
            )
        )
    return found


def bare_mjml_rate(count: int) -> float:
    source = content().mjml
    started = time.perf_counter()
    for _ in range(count):
        mjml.mjml2html(source)
    return count / (time.perf_counter() - started)


def render_rate(count: int) -> float:
    people = recipients(count)
    started = time.perf_counter()
    compiled = compile_template(content())
    for person in people:
        rendering.render(compiled, person, SENDER)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    print(machine_reference(), flush=True)
    count = args.recipients
    compiled = compile_template(content())
    sample = rendering.render(compiled, recipients(1)[0], SENDER)
    print(
        f"template: {STARTER.name}, {content().mjml.count('<mj-section')} sections; "
        f"a render: HTML {len(sample.html):,} characters, text {len(sample.text):,}",
        flush=True,
    )
    bare: list[float] = []
    ours: list[float] = []
    for _ in range(ROUNDS):
        bare.append(bare_mjml_rate(count))
        ours.append(render_rate(count))
        print(f"  round: bare mjml2html {bare[-1]:,.0f}/s, render {ours[-1]:,.0f}/s", flush=True)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"bare mjml2html of the template, one core: {b:,.0f} per second (median of {ROUNDS})")
    print(f"personalized render (subject, preheader, HTML, text), one core: {o:,.0f} per second")
    verdict = "MET" if o / b >= TARGET else "NOT MET"
    print(f"ratio render / bare mjml2html: {o / b:.2f} (target >= {TARGET}: {verdict})")
    with ProcessPoolExecutor(2) as pool:
        pool.submit(render_rate, 100).result()  # start both workers before timing
        started = time.perf_counter()
        futures = [pool.submit(render_rate, count) for _ in range(2)]
        for future in futures:
            future.result()
        both = 2 * count / (time.perf_counter() - started)
    print(f"personalized render, two processes (both cores): {both:,.0f} per second")


if __name__ == "__main__":
    main()
