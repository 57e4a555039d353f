#!/usr/bin/env bash
# One scheduled release: what is new since the last release, refreshed, validated, then `latest`
# moved to it. Run it from cron (see crontab in this folder) or by hand; examples/airflow/ runs
# the same four steps as tasks.
#
#   RELEASES  folder of dated releases: RELEASES/2026-12-07/, RELEASES/latest -> 2026-12-07
#   INBOX     where new input files land (a folder, a glob, or gs://...); files a release of
#             the lineage already read (same path, size and sha256) are skipped unread
#   KIND      source kind of the inbox (articles, books, web, mail, wiki); default articles
#   JOB       job file for the very first release (when RELEASES/latest does not exist yet);
#             later releases inherit their parent's configuration (sources aside)
#   STAMP     the release's name; default today's date (UTC)
#   GRISTMILL the gristmill command; default `gristmill`
#   PYTHON    a python for reading the JSON plan; default python3
# Anything after the variables is passed to gristmill (e.g. --workers 4, --set ..., or Beam
# options after --).
#
# Exit status: 0 done or nothing new, 1 a step failed (latest left where it was), 2 bad config.
set -euo pipefail

: "${RELEASES:?set RELEASES, the folder of dated releases}"
: "${INBOX:?set INBOX, where new input files land}"
KIND=${KIND:-articles}
STAMP=${STAMP:-$(date -u +%Y-%m-%d)}
GRISTMILL=${GRISTMILL:-gristmill}
PYTHON=${PYTHON:-python3}
OUT="$RELEASES/$STAMP"
LATEST="$RELEASES/latest"
mkdir -p "$RELEASES"

if [ "$(readlink "$LATEST" 2>/dev/null || true)" = "$STAMP" ]; then
  echo "weekly_refresh: $STAMP is already the latest release; nothing to do"
  exit 0
fi
if [ -e "$LATEST/manifest.json" ]; then
  job=(refresh "$LATEST")              # the parent's tokenizer, PII, thresholds, ... kept
else
  job=(run ${JOB:+"$JOB"})             # the first release
fi
common=(--source "$KIND=$INBOX" --output "$OUT")

# 1. plan: what is new (nothing written); stop quietly when there is nothing
plan="$RELEASES/.plan-$STAMP.json"
"$GRISTMILL" "${job[@]}" "${common[@]}" --dry-run --json "$plan" --quiet "$@"
new=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["inputs"]["files"])' "$plan")
rm -f "$plan"
if [ "$new" = 0 ]; then
  echo "weekly_refresh: no new input in $INBOX since the last release"
  exit 0
fi

# 2. build the release (killed? the same command resumes: finished partitions are kept)
"$GRISTMILL" "${job[@]}" "${common[@]}" --json "$RELEASES/$STAMP.summary.json" --progress plain "$@"

# 3. validate every file against the manifest before anyone is pointed at it
"$GRISTMILL" validate "$OUT"

# 4. move latest: a relative symlink, replaced by one atomic rename
ln -sfn "$STAMP" "$RELEASES/.latest-$STAMP"
mv -Tf "$RELEASES/.latest-$STAMP" "$LATEST"
echo "weekly_refresh: $LATEST -> $STAMP"
