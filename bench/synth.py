"""A seeded synthetic clinic registry for benchmarks: realistic in size and shape, never published.

The four clinics of the sample registry come first (the sample articles name their
physicians), then synthetic ones: each with 1-4 locations in one metro area (ZIP codes
sharing a 3-digit prefix) and 1-4 physicians with bios of a realistic length.
Coordinates are the centroids of real US ZIP codes from the ``zipcodes`` package.
The same seed always gives the same bytes, so a benchmark can be repeated and compared.

    python bench/synth.py --clinics 10000 --seed 1 --output clinics-10000.yaml
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import sys
from pathlib import Path
from typing import Any

import yaml
import zipcodes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))
from clinic_directory.schema import US_STATES  # noqa: E402
from clinic_directory.source import STR_TAG  # noqa: E402

EXTRA_SERVICES = {
    "epidural-steroid-injection": ("Epidural steroid injection", ["ESI"]),
    "radiofrequency-ablation": ("Radiofrequency ablation", ["RFA", "Rhizotomy"]),
    "spinal-cord-stimulation": ("Spinal cord stimulation", ["SCS", "Neuromodulation"]),
    "nerve-block": ("Nerve block", ["Nerve block injection"]),
    "medication-management": ("Medication management", []),
    "physical-therapy": ("Physical therapy", ["PT", "Physiotherapy"]),
    "platelet-rich-plasma": ("Platelet-rich plasma injection", ["PRP"]),
    "acupuncture": ("Acupuncture", []),
    "cognitive-behavioral-therapy": ("Cognitive behavioral therapy for pain", ["CBT"]),
    "kyphoplasty": ("Kyphoplasty", ["Vertebral augmentation"]),
}
EXTRA_CONDITIONS = {
    "migraine": ("Migraine", ["Chronic migraine"]),
    "osteoarthritis": ("Osteoarthritis", ["Arthritis", "OA"]),
    "neck-pain": ("Neck pain", []),
    "knee-pain": ("Knee pain", []),
    "shoulder-pain": ("Shoulder pain", []),
    "spinal-stenosis": ("Spinal stenosis", []),
    "herniated-disc": ("Herniated disc", ["Slipped disc", "Bulging disc"]),
    "phantom-limb-pain": ("Phantom limb pain", []),
    "pelvic-pain": ("Chronic pelvic pain", []),
    "post-surgical-pain": ("Post-surgical pain", ["Failed back surgery syndrome"]),
}
FIRST_NAMES = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark
Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian
Melissa George Deborah Timothy Stephanie Ronald Rebecca Jason Sharon Edward Laura Jeffrey Cynthia Ryan Amy Jacob
Kathleen Gary Angela Nicholas Shirley Eric Brenda Jonathan Emma Stephen Anna Larry Pamela Justin Nicole Scott
Samantha Brandon Katherine Benjamin Christine Samuel Helen Gregory Debra Alexander Rachel Priya Wei Mohammed Ana
Carlos Sofia Hiroshi Mei Rahul Fatima Luis Elena Omar Aisha Ankit Nimish Olga Dmitri Ngozi Kwame Thanh Minh""".split()
LAST_NAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Patel Shah Chen Wang Kim Park Singh Kumar Ali Khan Cohen Murphy Sullivan Okafor
Mensah Tran Pham Ivanov Novak Rossi Bianchi Muller Schmidt Dubois Haddad Nasser Yamamoto Tanaka Suzuki Kowalski
Bowers Dave Maheshwari Reyes Morales Ortiz Gutierrez Chavez Ramos Ruiz Alvarez Mendoza Castillo Jimenez
Vasquez""".split()
NAME_PATTERNS = ["{city} Pain and Spine", "{city} Pain Center", "{last} Pain Management", "{city} Interventional Pain",
                 "{state_name} Pain Institute", "{city} Spine and Wellness", "{last} Pain and Wellness",
                 "Advanced Pain Care of {city}", "{city} Comprehensive Pain Clinic", "{region} Pain Specialists"]
REGIONS = ["North", "South", "East", "West", "Central", "Lakeside", "Valley", "Riverside", "Summit", "Bayview"]
STREETS = ["Main Street", "Oak Avenue", "Medical Parkway", "Park Boulevard", "Center Drive", "Hospital Road",
           "Elm Street", "Commerce Way", "Health Plaza", "Lake Shore Drive", "Highland Avenue", "Market Street"]
BOARDS = ["Pain Medicine", "Anesthesiology", "Physical Medicine and Rehabilitation", "Neurology",
          "Psychiatry", "Family Medicine", "Internal Medicine"]
INSURERS = ["Medicare", "Medicaid", "Aetna", "Blue Cross Blue Shield", "Cigna", "UnitedHealthcare", "Humana",
            "Tricare", "Kaiser Permanente", "Workers' compensation"]
LANGUAGES = ["es", "zh", "vi", "ko", "ar", "ru", "hi", "tl", "fr", "pl"]
BIO_SENTENCES = [
    "{name} completed residency training in {board1} and a fellowship in interventional pain medicine.",
    "{name} joined {clinic} in {year} and sees patients with {cond1} and {cond2}.",
    "Board certified in {board1} and {board2}, {name} has treated chronic pain for more than {n} years.",
    "{name} believes in careful assessment before any procedure and in plans that patients understand.",
    "Patients often come to {name} after other treatments have not helped, and leave with a clear plan.",
    "Outside the clinic, {name} teaches residents and takes part in quality improvement work.",
    "{name} offers {svc1} and {svc2}, and works closely with physical therapists and primary care doctors.",
    "{name} has a particular interest in {cond1} and in reducing reliance on opioid medicines.",
    "Before medicine, {name} worked as a nurse, which still shapes how long each appointment lasts.",
    "{name} speaks with every new patient about goals for daily life, not only about pain scores.",
]
SUMMARY_SENTENCES = [
    "A pain practice in {city}, {state}, offering {svc1} and {svc2}.",
    "The team treats {cond1}, {cond2} and other long-lasting pain.",
    "Patients are assessed for every suitable treatment, not one option alone.",
    "Referrals from primary care physicians and specialists are welcome.",
    "Appointments are usually available within two weeks.",
]


class Quoted(str):
    """Text written in double quotes, as the registry wants ZIP codes and phone numbers."""


class Dumper(yaml.CSafeDumper):
    pass


Dumper.add_representer(Quoted, lambda dumper, value: dumper.represent_scalar(STR_TAG, str(value), style='"'))


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def load_zips() -> list[dict[str, Any]]:
    """Active, standard ZIP codes in the 50 states and DC, with coordinates, in file order."""
    states = set(US_STATES) - {"PR", "GU", "VI", "AS", "MP"}
    return [z for z in zipcodes.list_all() if z["active"] and z["zip_code_type"] == "STANDARD"
            and z["state"] in states and z["lat"] and z["long"]]


def load_sample() -> dict[str, Any]:
    """The repository's sample registry, with ZIP codes and phone numbers kept quoted."""
    sample = yaml.load((ROOT / "clinics.yaml").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    for clinic in sample["clinics"].values():
        for location in clinic["locations"].values():
            location["address"]["postal_code"] = Quoted(location["address"]["postal_code"])
            for field in ("phone", "fax"):
                if field in location:
                    location[field] = Quoted(location[field])
    return sample


def sample_entries(sample: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sample registry's services and conditions plus a few common extra ones."""
    services, conditions = dict(sample["services"]), dict(sample["conditions"])
    for extra, into in ((EXTRA_SERVICES, services), (EXTRA_CONDITIONS, conditions)):
        for slug, (name, aka) in extra.items():
            entry: dict[str, Any] = {"name": name, "summary": f"{name}: a common option or diagnosis in pain care."}
            if aka:
                entry["also_known_as"] = aka
            into[slug] = entry
    return services, conditions


def generate(clinic_count: int, seed: int) -> dict[str, Any]:
    """The sample registry's clinics (the sample articles name their physicians), then synthetic ones."""
    rng = random.Random(seed)
    sample = load_sample()
    zips = load_zips()
    by_prefix: dict[str, list[dict[str, Any]]] = {}
    for z in zips:
        by_prefix.setdefault(z["zip_code"][:3], []).append(z)
    services, conditions = sample_entries(sample)
    service_names = {slug: entry["name"].lower() for slug, entry in services.items()}
    condition_names = {slug: entry["name"].lower() for slug, entry in conditions.items()}

    clinics: dict[str, Any] = dict(sample["clinics"])
    physician_slugs = {slug for clinic in clinics.values() for slug in clinic.get("physicians", {})}
    for number in range(clinic_count - len(clinics)):
        home = rng.choice(zips)
        last = rng.choice(LAST_NAMES)
        name = rng.choice(NAME_PATTERNS).format(city=home["city"], last=last, state_name=US_STATES[home["state"]],
                                                region=rng.choice(REGIONS))
        slug = f"{slugify(name)}-{number}"
        svc = rng.sample(sorted(services), rng.randint(1, 5))
        cond = rng.sample(sorted(conditions), rng.randint(0, 6))
        words = {"city": home["city"], "state": home["state"], "svc1": service_names[svc[0]],
                 "svc2": service_names[svc[-1]] if len(svc) > 1 else "follow-up care",
                 "cond1": condition_names[cond[0]] if cond else "back pain",
                 "cond2": condition_names[cond[-1]] if len(cond) > 1 else "nerve pain"}
        clinic: dict[str, Any] = {
            "name": name,
            "website": f"https://{slugify(name)}.example.com/",
            "summary": " ".join(s.format(**words) for s in SUMMARY_SENTENCES[: rng.randint(2, 4)]),
            "accepting_new_patients": rng.random() < 0.8,
            "telehealth": rng.random() < 0.5,
            "languages": ["en", *rng.sample(LANGUAGES, rng.choice((0, 0, 0, 1, 1, 2)))],
            "insurance": sorted(rng.sample(INSURERS, rng.randint(0, 6))),
            "services": svc,
            "conditions": cond,
            "last_verified": dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(700)),
            "physicians": {},
            "locations": {},
        }
        if not clinic["insurance"]:
            del clinic["insurance"]
        for _ in range(rng.randint(1, 4)):
            first = rng.choice(FIRST_NAMES)
            surname = last if not clinic["physicians"] and rng.random() < 0.3 else rng.choice(LAST_NAMES)
            doc_name = f"{first} {surname}"
            doc_slug = base = slugify(doc_name)
            suffix = 2
            while doc_slug in physician_slugs:
                doc_slug, suffix = f"{base}-{suffix}", suffix + 1
            physician_slugs.add(doc_slug)
            boards = rng.sample(BOARDS, rng.randint(1, 2))
            bio_words = {**words, "name": f"Dr. {surname}", "clinic": name, "year": rng.randint(1998, 2025),
                         "n": rng.randint(5, 30), "board1": boards[0], "board2": boards[-1]}
            bio = " ".join(s.format(**bio_words) for s in rng.sample(BIO_SENTENCES, rng.randint(2, 4)))
            clinic["physicians"][doc_slug] = {"name": doc_name, "credentials": [rng.choice(("MD", "MD", "DO"))],
                                              "board_certifications": boards, "bio": bio}
        nearby = by_prefix[home["zip_code"][:3]]
        for index in range(rng.randint(1, 4)):
            z = home if index == 0 else rng.choice(nearby)
            loc_slug = slugify(z["city"])
            while loc_slug in clinic["locations"]:
                loc_slug = f"{loc_slug}-{index + 1}"
            area = (z["area_codes"] or ["555"])[0]
            opens, closes = rng.choice((("08:00", "17:00"), ("09:00", "17:00"), ("07:30", "16:30")))
            hours = {day: f"{opens}-{closes}" for day in ("mon", "tue", "wed", "thu", "fri")}
            hours["sat"] = rng.choice(("closed", "closed", "09:00-12:00"))
            hours["sun"] = "closed"
            location = {
                "name": f"{z['city']} office",
                "address": {"street": f"{rng.randint(10, 9999)} {rng.choice(STREETS)}", "city": z["city"],
                            "state": z["state"], "postal_code": Quoted(z["zip_code"])},
                "geo": {"lat": float(z["lat"]), "lon": float(z["long"])},
                "phone": Quoted(f"+1-{area}-555-01{rng.randint(0, 99):02d}"),
                "hours": hours,
            }
            if rng.random() < 0.3:
                location["address"]["street2"] = f"Suite {rng.randint(100, 499)}"
            if rng.random() < 0.7:
                location["fax"] = Quoted(f"+1-{area}-555-01{rng.randint(0, 99):02d}")
            clinic["locations"][loc_slug] = location
        if rng.random() < 0.8:
            clinic["referral"] = {"fax": Quoted(f"+1-555-555-01{rng.randint(0, 99):02d}"),
                                  "email": f"referrals@{slugify(name)}.example.com",
                                  "requirements": ["Reason for referral", "Current medication list"]}
        if not clinic["conditions"]:
            del clinic["conditions"]
        clinics[slug] = clinic
    return {"schema": 1, "services": services, "conditions": conditions, "clinics": clinics}


def dump(registry: dict[str, Any]) -> str:
    header = "# Synthetic registry for benchmarks (bench/synth.py): not real clinics.\n"
    return header + yaml.dump(registry, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100,
                              default_flow_style=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clinics", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    args.output.write_text(dump(generate(args.clinics, args.seed)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
