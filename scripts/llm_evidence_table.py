#!/usr/bin/env python3
"""Markdown for docs/evidence-llm.md from scripts/llm_evidence.sh's output:
per policy, over seeds, final and best validation exact match, updates to
reach 50% and 90% exact match, final validation loss, wall time; the best
fixed LR of the grid picked by mean final exact match; the tuning cost.

usage: llm_evidence_table.py OUT_DIR SEED...
"""
import json
import statistics
import sys
from pathlib import Path

TARGETS = (0.5, 0.8)


def mean_sd(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt(v, digits):
    if v is None:
        return "-"
    return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"


def evals(log):
    """(step, exact match, eval loss) of each evaluation in a trial's log."""
    out = []
    for line in Path(log).read_text().splitlines():
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if "eval_exact_match" in v:
            out.append((v["step"], v["eval_exact_match"], v.get("eval_loss")))
    return out


def main():
    out = Path(sys.argv[1])
    seeds = sys.argv[2:]
    runs = [json.loads((out / f"seed-{s}.json").read_text()) for s in seeds]
    specs = [t["spec"] for t in sorted(runs[0]["trials"], key=lambda t: t["index"])]
    rows = []
    for spec in specs:
        trials = [next(t for t in r["trials"] if t["spec"] == spec) for r in runs]
        ok = [t for t in trials if t["status"] == "ok"]
        series = [evals(t["log"]) for t in ok]
        reach = {
            target: [next((s for s, em, _ in e if em >= target), None) for e in series]
            for target in TARGETS
        }
        rows.append({
            "spec": spec,
            "n": len(trials),
            "ok": len(ok),
            "final_em": mean_sd([e[-1][1] if e else None for e in series]),
            "best_em": mean_sd([max(em for _, em, _ in e) if e else None for e in series]),
            "loss": mean_sd([t["eval_loss"] for t in ok]),
            "reach": {k: (mean_sd(v), sum(x is not None for x in v)) for k, v in reach.items()},
            "wall": mean_sd([t["wall_s"] for t in ok]),
            "steps": sum(t["steps"] for t in ok),
        })
    fixed = [r for r in rows if r["spec"].startswith("FIX(")]
    best_fixed = max(fixed, key=lambda r: r["final_em"][0] if r["final_em"] else -1) if fixed else None

    pre = [json.loads(l) for l in (out / "pretrain.out").read_text().splitlines() if l.startswith("{")]
    pre = pre[-1] if pre else {}
    print("# Evidence: LR policies for LoRA fine-tuning, in miniature\n")
    print("Made by `scripts/llm_evidence.sh` (tables by `scripts/llm_evidence_table.py`); "
          "every number below is from that run, on this project's 2-core CPU.\n")
    print("**Setup.** A Llama of width 64, 2 layers, 4 heads (2 key/value heads), with the "
          "committed 320-token BPE tokenizer, pretrained by `lrtop train` on the sentences "
          f"\"reverse a b c d is d c b a .\" for 3,896 strings of four letters a-h "
          f"({pre.get('steps', '?')} updates, AdamW, cosine from 3e-3; final eval loss "
          f"{pre.get('eval_loss', float('nan')):.3f}) and saved as a transformers checkpoint. "
          "LoRA (r 8, alpha 16, all seven projections; the base frozen) then teaches the "
          "instruction form `{\"prompt\": \"a b c d ->\", \"completion\": \" d c b a\"}` on "
          "the same 3,896 strings; the validation set is 200 strings that appear nowhere else. "
          "Exact match: the greedy answer equals the completion. Batch 16, 24 tokens, AdamW, "
          f"evaluation every 25 updates, seeds {', '.join(seeds)}.\n")
    head = ("| policy | runs ok | final exact match | best exact match | updates to 50% EM (runs) "
            "| updates to 80% EM (runs) | final val loss | wall s |")
    print(head)
    print("|" + "---|" * 8)
    for r in rows:
        mark = " **(best fixed)**" if r is best_fixed else ""
        cells = [f"`{r['spec']}`{mark}", f"{r['ok']}/{r['n']}", fmt(r["final_em"], 3),
                 fmt(r["best_em"], 3)]
        for target in TARGETS:
            v, count = r["reach"][target]
            cells.append(f"{fmt(v, 0)} ({count}/{r['ok']})")
        cells += [fmt(r["loss"], 3), fmt(r["wall"], 1)]
        print("| " + " | ".join(cells) + " |")
    total_steps = sum(r["steps"] for r in rows)
    total_wall = sum(t["wall_s"] for run in runs for t in run["trials"] if t["status"] == "ok")
    print(f"\n**Tuning cost.** {len(rows)} policies x {len(seeds)} seeds = "
          f"{sum(r['n'] for r in rows)} LoRA runs, {total_steps:,} updates, "
          f"{total_wall:,.0f} s of trial wall time (trials ran {runs[0].get('jobs', 2)} at a time).\n")


if __name__ == "__main__":
    main()
