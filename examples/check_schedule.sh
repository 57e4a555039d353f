#!/usr/bin/env bash
# The scheduling recipe run for real, twice, on the repository's sample/ corpus:
#   1st run: no release yet -> the first release (examples/cron/first.yaml) from an inbox of 12 mails
#   2nd run: a new mail file lands in the inbox -> a refresh of `latest` that reads only it,
#            keeps the parent's configuration (tokenizer, shards, PII salt by reference)
#   3rd run: nothing new -> no release, exit 0
# then checks both releases validate, `latest` points at the second and its manifest says so.
# Run from the repository root: bash examples/check_schedule.sh (about a minute on 2 cores).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export GRISTMILL=${GRISTMILL:-$ROOT/.venv/bin/gristmill}
export PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gristmill-schedule.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export RELEASES="$WORK/releases" INBOX="$WORK/inbox" KIND=mail JOB="$ROOT/examples/cron/first.yaml"
export GRISTMILL_PII_SALT="check-schedule-salt"
RECIPE="$ROOT/examples/cron/weekly_refresh.sh"
mkdir -p "$INBOX"
cp sample/mail/easy-ham-*.txt "$INBOX/"

echo "== week 1: first release"
STAMP=2026-12-07 "$RECIPE" --set tokenizer.vocab_size=2000
echo "== week 2: one new file in the inbox"
cp sample/mail/hard-ham-1-00005.*.txt "$INBOX/"
STAMP=2026-12-14 "$RECIPE" --set tokenizer.vocab_size=2000
echo "== week 3: nothing new"
STAMP=2026-12-21 "$RECIPE" --set tokenizer.vocab_size=2000 | tee "$WORK/week3.log"

echo "== checks"
"$GRISTMILL" validate "$RELEASES/2026-12-07"
"$GRISTMILL" validate "$RELEASES/latest"
"$PYTHON" - "$RELEASES" <<'PY'
import json, os, sys
root = sys.argv[1]
assert os.readlink(os.path.join(root, "latest")) == "2026-12-14", os.readlink(os.path.join(root, "latest"))
assert not os.path.exists(os.path.join(root, "2026-12-21")), "week 3 made a release from nothing"
first = json.load(open(os.path.join(root, "2026-12-07", "manifest.json")))
second = json.load(open(os.path.join(root, "2026-12-14", "manifest.json")))
r = second["refresh"]
assert r["parent"] == os.path.join(root, "2026-12-07"), r["parent"]  # the folder, not the link
assert r["inputs_read"] == 1 and len(r["inputs_skipped"]) == 12, (r["inputs_read"], len(r["inputs_skipped"]))
assert r["tokenizer"] == "reused" and r["config_changes"] == [], r
assert any(o["path"].startswith("shards/train-") for o in second["outputs"])
assert second["config"]["pii"]["salt"]["ref"] == "env:GRISTMILL_PII_SALT"
assert second["config"]["pii"]["salt"]["fingerprint"] == first["config"]["pii"]["salt"]["fingerprint"]
summary = json.load(open(os.path.join(root, "2026-12-14.summary.json")))
assert summary["status"] == "ok" and summary["counts"] == second["counts"]
print(f"check_schedule: ok: week 1 {first['counts']['documents']} documents from "
      f"{len(first['inputs'])} files; week 2 read 1 new file, skipped 12, added "
      f"{r['documents_added']} documents with the parent's tokenizer; week 3 nothing new; "
      "latest -> 2026-12-14")
PY
grep -q "no new input" "$WORK/week3.log"
