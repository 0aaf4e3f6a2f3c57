"""The README's figures, generated from the committed benchmark results (``benchmarks/results/*.json``), never
typed by hand: ``python -m workbench figures`` rewrites each block between ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->`` in README.md; ``--check`` fails when the README and the results disagree (a test
runs it)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..results import RESULTS, ROOT

README = ROOT / "README.md"


def _pct(ci: dict | None, digits: int = 1) -> str:
    if not ci or ci.get("value") is None:
        return "n/a"
    lo, hi = ci["ci95"]
    return f"{100 * ci['value']:.{digits}f} % [{100 * lo:.{digits}f}, {100 * hi:.{digits}f}]"


def _ms(ci: dict | None) -> str:
    if not ci or ci.get("value") is None:
        return "n/a"
    lo, hi = ci["ci95"]
    return f"{ci['value']:.0f} [{lo:.0f}, {hi:.0f}]"


def _prov(r: dict, command: str) -> str:
    p = r.get("provenance", {})
    m = p.get("machine", {})
    return (f"Measured {p.get('date', '?')[:10]} at commit `{p.get('commit', '?')[:8]}`"
            f"{' (uncommitted changes)' if p.get('dirty') else ''} on {m.get('cores', '?')} cores of "
            f"{m.get('cpu', '?')}{', ' + m['gpu'] if m.get('gpu') else ''} (torch threads {m.get('torch_threads', '?')}): "
            f"`{command}`." + _model_note(r))


def _model_note(r: dict) -> str:
    """Which model the figures are of, by content: the shipped one, or an earlier one (stale figures)."""
    from ..results import MODEL_KEYS, file_sha1, model_file, repo_path
    sha = r.get("provenance", {}).get("model_sha1")
    how = r.get("provenance", {}).get("model_sha1_attributed")
    path = next((r[k] for k in MODEL_KEYS if isinstance(r.get(k), str)), None)
    if not sha or path is None:
        return ""
    f = model_file(path)
    if f is None:
        return f" Model `{sha}`."
    now, shown = file_sha1(f), repo_path(f)
    if now == sha:
        return f" Model `{sha}` (the shipped `{shown}`)."
    return (f" **Measured on an earlier model** (`{sha}`{'; attributed afterwards: ' + how if how else ''}; the shipped `{shown}` "
            f"is `{now}`): these figures are not of today's model until the command above is rerun.")


def batching(r: dict) -> str:
    from ..batching.simulation import headline
    h = headline(r)
    names = {"single": "each chunk alone, features per 30 ms frame (the per-stream CPU baseline)",
             "single_chunk_front_end": "each chunk alone, features once per chunk",
             "batched": "the engine: batched step, features once per batch, pause flush",
             "batched_no_flush": "the engine without its pause flush (like NeMo's pipeline)",
             "nemo_pipeline": "NeMo's own `CacheAwareRNNTPipeline`, same load and dispatch rule"}
    rows = ["| configuration | streams in real time (median; worst-best repeat) | p95 added latency | device load | mean batch |",
            "|---|---|---|---|---|"]
    for key, label in names.items():
        if key in h:
            x = h[key]
            rows.append(f"| {label} | **{x['sustained_streams']}** ({x['spread'][0]}-{x['spread'][1]}) | "
                        f"{x['p95_added_ms']:.0f} ms | {x['device_busy']:.2f} | {x['mean_batch'] or 0:.1f} |"
                        if x["p95_added_ms"] is not None else f"| {label} | **{x['sustained_streams']}** | n/a | n/a | n/a |")
    spread = h.get("ratio_spread") or [None, None]
    ratio = "n/a" if h["ratio"] is None else f"{h['ratio']:.1f}x"
    lines = ["\n".join(rows), "",
             f"Engine over the per-stream baseline: **{ratio}** (spread over repeats "
             f"{'n/a' if spread[0] is None else f'{spread[0]:.1f}'}-{'n/a' if spread[1] is None else f'{spread[1]:.1f}'}x; "
             f"goal {r['targets']['ratio_goal']:.0f}x: {'met' if r['targets']['ratio_met'] else 'not met'})"
             + (f"; the engine without flush over NeMo's own pipeline (neither flushes): **{h['ratio_vs_nemo_pipeline']:.2f}x**"
                f" ({'ahead' if r['targets'].get('ahead_of_nemo_pipeline') else 'not ahead'})"
                if h.get("ratio_vs_nemo_pipeline") else "")
             + f". {r['chunk_ms']:.0f} ms chunks, target batch {r['policy']['target_batch']}, max wait "
               f"{r['policy']['max_wait_ms']:.0f} ms, p95 budget {r['latency_budget_ms']:.0f} ms, {r.get('repeats', 1)} interleaved "
               f"repeats per point (the median decides)."]
    eos = r.get("end_of_speech") or {}
    if eos.get("eos_to_final_ms_flush") and eos.get("eos_to_final_ms_no_flush"):
        f, n = eos["eos_to_final_ms_flush"], eos["eos_to_final_ms_no_flush"]
        lines.append(f"End of speech at {eos['streams']} streams, true end -> final result p50/p95: "
                     f"{f['p50']:.0f}/{f['p95']:.0f} ms with the pause flush, {n['p50']:.0f}/{n['p95']:.0f} ms without "
                     f"(both include the {r['policy']['pause_ms']:.0f} ms the VAD waits).")
    lines.append(_prov(r, "python -m workbench bench batching --duration 10 --grid 1,2,4,8,16,32,64 --repeats 3"))
    return "\n".join(lines)


def endpoint(r: dict) -> str:
    out = []
    for key, title in (("quiet", "utterances without background noise"), ("all", "the whole split")):
        rep = r[key]
        rows = [f"| end-pointer ({title}: {rep['test']['n_utterances']} test utterances) | setting chosen on dev | "
                "cut-off rate [95 % CI] | EP90 ms [95 % CI] | cut-off vs pause, points [95 % CI] |", "|---|---|---|---|---|"]
        for name, row in rep["test"]["rows"].items():
            if row.get("setting") is None:
                rows.append(f"| {name} | none within the budget | | | |")
                continue
            d = rep["test"]["vs_baseline"].get(name)
            diff = "" if d is None else (
                f"{100 * d['cutoff_diff']['value']:+.1f} [{100 * d['cutoff_diff']['ci95'][0]:+.1f}, "
                f"{100 * d['cutoff_diff']['ci95'][1]:+.1f}]" + (" (within noise)" if d["cutoff_diff"]["within_noise"] else ""))
            rows.append(f"| {name} | {row['setting']} | {_pct(row['ci']['cutoff_rate'])} | {_ms(row['ci']['EP90_ms'])} | {diff} |")
        ratio = rep["two_pass_cutoff_over_pause"]
        out += ["\n".join(rows), "",
                f"Dev EP90 budget {rep['dev']['budget_EP90_ms']:.0f} ms: {rep['dev'].get('budget_rule', 'pause 500 on dev')} "
                f"({rep['dev']['n_utterances']} dev utterances). Two-pass over pause cut-off rate on test: "
                f"**{'n/a' if ratio is None else f'{ratio:.2f}x'}** (goal <= 0.5x: "
                f"{'met' if rep['goal_halved'] else 'not met'}{', beyond noise' if rep['goal_halved_beyond_noise'] else ''}).", ""]
    if r.get("by_noise"):
        kinds = sorted({k for v in r["by_noise"].values() for k in v})
        rows = ["| end-pointer (whole split, dev setting) | " + " | ".join(f"{k}: fires / EP50 / EP90 ms" for k in kinds) + " |",
                "|---|" + "---|" * len(kinds)]
        for name, by in r["by_noise"].items():
            cells = []
            for k in kinds:
                v = by.get(k)
                cells.append("n/a" if v is None else
                             f"{100 * v['fired']['value']:.0f} % [{100 * v['fired']['ci95'][0]:.0f}, {100 * v['fired']['ci95'][1]:.0f}]"
                             f" / {v['EP50_ms']['value']:.0f} / {v['EP90_ms']['value']:.0f} (n={v['n']})")
            rows.append(f"| {name} | " + " | ".join(cells) + " |")
        out += ["Per background: how often each end-pointer fires at all before the recording ends (95 % CI), and "
                "its EP50/EP90 over the utterances it does not cut off:", "", "\n".join(rows), ""]
    out.append(_prov(r, f"python -m workbench bench endpoint --n {r['n_utterances']} --n-dev {r['n_dev_utterances']}"))
    return "\n".join(out)


def asr(r: dict) -> str:
    rows = ["| policy (test) | measured mean latency | WER, all [95 % CI] | WER, clean [95 % CI] |", "|---|---|---|---|"]
    for p in sorted(r["fixed"], key=lambda p: p["latency_ms"]) + r["dynamic"]:
        clean = "n/a" if p.get("wer_clean") is None else \
            f"{100 * p['wer_clean']:.1f} % [{100 * p['wer_clean_ci95'][0]:.1f}, {100 * p['wer_clean_ci95'][1]:.1f}]"
        rows.append(f"| {p['policy']}{' (threshold chosen on dev)' if p['policy'].startswith('cascade') else ''} | "
                    f"{p['latency_ms']:.0f} ms | {100 * p['wer']:.1f} % [{100 * p['wer_ci95'][0]:.1f}, {100 * p['wer_ci95'][1]:.1f}] | {clean} |")
    if "espnet" in r:
        e = r["espnet"]
        clean = "n/a" if e.get("wer_clean") is None else \
            f"{100 * e['wer_clean']:.1f} % [{100 * e['wer_clean_ci95'][0]:.1f}, {100 * e['wer_clean_ci95'][1]:.1f}]"
        rows.append(f"| ESPnet contextual block, beam 4 | {e['latency_ms']:.0f} ms nominal, {e['measured_wait_ms']:.0f} ms measured | "
                    f"{100 * e['wer']:.1f} % [{100 * e['wer_ci95'][0]:.1f}, {100 * e['wer_ci95'][1]:.1f}] | {clean} |")
    g = r["goals"]
    lines = ["\n".join(rows), ""]
    saving = g.get("latency_saving_at_equal_wer")
    cheapest = g.get("cheapest_dynamic_as_good_as_largest")
    if cheapest:
        d = g["wer_diff_vs_largest_fixed"].get(cheapest)
        lines.append(f"Cheapest cascade as good as {g['largest_fixed']} on test: {cheapest}, {100 * saving:.0f} % less latency "
                     f"(goal 30 %: {'met' if g['saving_goal_met'] else 'not met'}); its WER minus {g['largest_fixed']}'s: "
                     f"{100 * d['value']:+.1f} points [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
                     f"{' (within noise)' if d['within_noise'] else ''}.")
    else:
        lines.append(f"No cascade chosen on dev is as good as {g['largest_fixed']} on test.")
    fixed = sorted(r["fixed"], key=lambda p: p["latency_ms"])
    lines.append(f"Against the whole fixed front (interpolated between the trained lookaheads) the best cascade gains "
                 f"{100 * g['max_wer_gain_over_fixed_front']:+.1f} points at its own latency ({g['at']}).")
    small = g["wer_diff_vs_largest_fixed"].get(fixed[0]["policy"])
    if small:
        lines.append(f"The smallest fixed lookahead ({fixed[0]['policy']}, {fixed[0]['latency_ms']:.0f} ms) minus "
                     f"{g['largest_fixed']}: {100 * small['value']:+.1f} points [{100 * small['ci95'][0]:+.1f}, "
                     f"{100 * small['ci95'][1]:+.1f}]" + (": within noise, so with this model waiting for more audio buys "
                                                           "nothing measurable, and neither can a cascade." if small["within_noise"] else "."))
    rtf = r["rtf"]
    lines.append("Real-time factor, one stream in 30 ms frames, the same " + str(rtf["n_utterances"]) + " utterances: " +
                 ", ".join(f"NeMo {k} {v:.3f}" for k, v in rtf["nemo"].items()) +
                 (f", ESPnet {rtf['espnet']:.3f}" if "espnet" in rtf else "") + ".")
    lines.append(f"{r['n_utterances']} test utterances ({r['n_clean']} clean); cascade thresholds chosen on "
                 f"{r['n_dev_utterances']} dev utterances ({', '.join(r['dev']['chosen'])}).")
    lines.append(_prov(r, f"python -m workbench bench asr --n {r['n_utterances']} --n-dev {r['n_dev_utterances']}"))
    return "\n".join(lines)


def asr_splits(r: dict) -> str:
    sp = r.get("splits")
    if not sp:
        return "(no per-split table yet: run `python -m workbench bench asr --splits-only`)"
    table = sp["table"]
    sets = list(next(iter(table.values())))
    rows = ["| system | " + " | ".join(sets) + " | RTF |", "|---|" + "---|" * (len(sets) + 1)]
    for name, row in table.items():
        cells = [f"{100 * row[s]['wer']:.1f} [{100 * row[s]['ci95'][0]:.1f}, {100 * row[s]['ci95'][1]:.1f}]"
                 if s in row else "n/a" for s in sets]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {sp['rtf'][name]:.3f} |")
    ns = {s: next(iter(table.values()))[s]["n"] for s in sets}
    lines = ["\n".join(rows), "",
             "WER in % [95 % interval], the same utterances for every system, one normalisation (Whisper's English "
             "normaliser); utterances per set: " + ", ".join(f"{s} {n}" for s, n in ns.items()) + ". "
             "RTF: one stream in 30 ms frames through each system's `Recognizer`, the same utterances. Whisper is "
             "not streaming (it hears the whole utterance first); PocketSphinx decodes as audio arrives but its "
             "text is final only at the end; ours stream with the lookahead shown.",
             *(["", "| target (streaming-ASR issue) | ours | bound | met? |", "|---|---|---|---|"]
               + [f"| {k} | {100 * v['ours']:.1f} % | {100 * v['target']:.1f} % | {'yes' if v['met'] else '**no**'} |"
                  for k, v in sp.get("targets", {}).items()] + [""] if sp.get("targets") else []),
             f"Model: `{Path(r['model']).relative_to(ROOT) if Path(r['model']).is_relative_to(ROOT) else r['model']}`.",
             _prov(r, r.get("command") or f"python -m workbench bench asr --splits-only --n-splits {sp['n_per_set']}")]
    return "\n".join(lines)


def rescoring(r: dict) -> str:
    sets = list(r["sets"])
    systems = list(next(iter(r["sets"].values()))["systems"])
    head = "| system | " + " | ".join(f"{s} WER %" for s in sets) + " | test: relative change | test: vs the word bonus | test: oracle gap recovered | added ms p50 / p95 |"
    rows = [head, "|---|" + "---|" * (len(sets) + 4)]
    t = r["sets"].get("test", r["sets"][sets[0]])
    for name in systems:
        cells = [_pct(r["sets"][s]["systems"][name]["wer"]) for s in sets]
        row = t["systems"][name]
        rel, gap = row.get("relative_change"), row.get("oracle_gap_recovered")
        vs = row.get("relative_change_vs_word_bonus")
        lat = row["latency_ms"]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {_pct(rel) if rel else '·'} | {_pct(vs) if vs else '·'} | "
                    f"{_pct(gap, 0) if gap else '·'} | "
                    f"{lat['p50']['value']:.1f} / {lat['p95']['value']:.1f} |")
    rows.append("| oracle (best in the list) | " + " | ".join(_pct(r["sets"][s]["oracle"]["wer"]) for s in sets) + " | | | | |")
    how = r["systems"]
    tuned = "; ".join(f"{n}: λ {v['lambda']}, β {v['beta']}" for n, v in how.items()
                      if "dev_wer" in v and "lambda" in v)
    ft = next((v for v in how.values() if "trained" in v), None)
    lines = ["\n".join(rows), "",
             ", ".join(f"{s} {r['sets'][s]['n']}" for s in sets) + f" utterances; n-best from beam {r['beam']} at "
             f"context {r['att_context']} ({t['mean_hypotheses']:.1f} distinct hypotheses per list on test). "
             "WER [95 % bootstrap interval]; relative change (against the 1-best, and against the word bonus alone: "
             "what reading the text adds), and gap recovered with paired bootstrap intervals; "
             "latency: each list reranked alone, as a finished stream's `Final`, on the CPU. "
             f"Weights tuned on {r['tuned_on']}: {tuned}."]
    if ft:
        tr = ft["trained"]
        lines.append(f"Fine-tuned: {tr['train_lists']} training lists, {tr['steps']} steps (kept: step {tr['best_step']}, "
                     f"chosen on {tr.get('n_val', '?')} dev lists), {tr['train_seconds'] / 60:.0f} min, "
                     f"{tr['trainable_params']:,} trained parameters; λ {ft['lambda']:.3f}, β {ft['beta']:.2f} "
                     "(`python -m workbench train-reranker`).")
    for key in ("headline", "headline_fast"):
        h = r.get(key)
        if h and h.get("relative_change"):
            lines.append(f"Against the goals ({h['system']}, test): relative change {_pct(h['relative_change'])} "
                         f"(goal ≤ -{100 * h['goal_relative_reduction']:.0f} %), oracle gap recovered "
                         f"{_pct(h['oracle_gap_recovered'], 0)} (goal ≥ {100 * h['goal_gap_recovered']:.0f} %), added p95 "
                         f"{_ms(h['p95_ms'])} ms (goal ≤ {h['goal_p95_ms']:.0f} ms)"
                         + (f"; beside the word bonus alone {_pct(h['relative_change_vs_word_bonus'])}."
                            if h.get("relative_change_vs_word_bonus") else "."))
    fast = next((v for v in how.values() if isinstance(v.get("top_k"), dict)), None)
    if fast:
        k = fast["top_k"]
        lines.append(f"The same fine-tuned reranker, fast: its merged LM in {fast['dtype']}, the LM reading only the "
                     f"top {k['top_k']} hypotheses by acoustic + β·words (k: the smallest within "
                     f"{100 * k['tolerance']:.1f} points of reading all on dev; dev WER by k: "
                     + ", ".join(f"{kk}: {100 * w:.1f} %" for kk, w in k["curve"]) + f", all: {100 * k['wer_all']:.1f} %)."
                     + (" With k = 1 the LM is never consulted: that row is the word bonus alone, and its meeting the "
                        "goals is the bonus's doing, not the LLM's." if k["top_k"] == 1 else ""))
    lines.append(_prov(r, r.get("command") or "python -m workbench bench rescoring"))
    return "\n".join(lines)


def repair(r: dict) -> str:
    sets = list(r["sets"])
    S = r["sets"]
    rows = ["| test | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets),
            "| utterances (cut) | " + " | ".join(f"{S[s]['n']} ({S[s]['n_cut']})" for s in sets) + " |"]
    for label, get in (("cut detection F1", lambda x: x["detection"]["f1"]),
                       ("… precision", lambda x: x["detection"]["precision"]),
                       ("… recall", lambda x: x["detection"]["recall"]),
                       ("Smatch F1, cut requests", lambda x: x["smatch_partial"]),
                       ("Smatch F1, whole requests", lambda x: x["smatch_full"]),
                       ("owed role right (the first)", lambda x: x["missing_role_first"]),
                       ("owed roles exactly right", lambda x: x["missing_roles_exact"]),
                       ("question names the right role", lambda x: x["question_right"]),
                       ("filler recovered from an earlier turn", lambda x: x["recovery"]["dialogue context"]),
                       ("device recovered from the device state", lambda x: x["recovery"]["device state"])):
        rows.append(f"| {label} | " + " | ".join(_pct(get(S[s])) + f" (n={get(S[s])['n']})" if get(S[s])["n"] else "·"
                                               for s in sets) + " |")
    for base in ("last word dangles (no parser)", "spaCy: parse left open (no parser of ours)"):
        rows.append(f"| detection F1, {base} | " + " | ".join(
            _pct(S[s]["detection_by_rule"][base]["f1"]) if base in S[s].get("detection_by_rule", {}) else "·"
            for s in sets) + " |")
    lat = r["latency_ms"]
    h = r["headline"]
    goals = r["goals"]
    lines = ["\n".join(rows), "",
             f"Cut detection: the rule chosen on dev is **{r['detection_rule']}** (the parser's P(cut) threshold "
             f"{r['threshold']:g}, chosen on dev when it was trained; dev F1 {_pct(r['dev_detection']['f1'])}"
             + (f"; the recogniser's transcripts are read at {r['threshold_asr']:g}, chosen on its dev transcripts"
                if r.get("threshold_asr") not in (None, r["threshold"]) else "") + "). "
             "Rates with Wilson intervals, F1 and Smatch with bootstrap intervals over utterances. Parser latency, one "
             f"request at a time on {r['threads']} threads: p50 {lat['p50']['value']:.1f} ms, p95 "
             f"{lat['p95']['value']:.1f} ms [{lat['p95']['ci95'][0]:.1f}, {lat['p95']['ci95'][1]:.1f}]."
             + (f" The syntax baseline is spaCy's `{r['syntax_baseline']['model']}` dependency parse with the rules "
                f"chosen on dev ({', '.join(r['syntax_baseline']['rules_chosen_on_dev'])}; p95 "
                f"{r['syntax_baseline']['latency_ms']['p95']['value']:.1f} ms): English syntax without the domain, it "
                "cannot see a grammatical request that is not finished (\"call uncle\")." if r.get("syntax_baseline") else ""),
             "Against the goals: " + "; ".join(
                 f"{k} {v:.1f} ms (goal ≤ {goals[k]:.0f})" if k.endswith("ms") else
                 f"{k} {100 * v:.1f} % (goal ≥ {100 * goals[k]:.0f} %)" for k, v in h.items() if k in goals)
             + ": " + ", ".join(f"{k} {'met' if ok else '**missed**'}" for k, ok in h["met"].items()) + "."]
    ev = S.get("text, every cut", {}).get("missing_role_first_by_words_said")
    if ev:
        line = ("Owed role right by the words said before the cut (text, every cut): "
                + ", ".join(f"{k}: {_pct(v, 0)} (n={v['n']})" for k, v in ev.items())
                + ". A cut after one or two words rarely says which request it begins (\"i ...\", \"could ...\").")
        c = S["text, every cut"].get("missing_role_ceiling")
        if c:
            line += (f" No reader of the words said could do better than {_pct(c['ceiling'])} on this set: for each "
                     "cut, the share of the corpus generator's cuts with the same words that owe its most common role "
                     f"({c['n_sample']:,} fresh sentences cut everywhere; by words said: "
                     + ", ".join(f"{k}: {100 * v:.0f} %" for k, v in c["by_words_said"].items()) + ").")
        lines.append(line)
    asr = S.get("ASR", {}).get("through_asr")
    if asr:
        lines.append("Through the recogniser: "
                     f"{_pct(asr['complete_transcript_is_a_prefix_of_its_reference'])} of the complete requests' "
                     "transcripts are a prefix of their reference (the recogniser dropped the last words: the request "
                     "then reads as cut, and as heard it is); on the "
                     f"{asr['n_exact_transcripts']} utterances transcribed exactly, detection F1 is "
                     f"{_pct(asr['detection_on_exact_transcripts']['f1'])}.")
    ood = r.get("out_of_domain")
    if ood:
        lines.append("Bad input: the domain gate (text the domain LM finds less likely than any dev text or transcript, "
                     f"mean token log-probability below {ood['domain_floor']:g}) gives the unknown intent to "
                     + ", ".join(f"{k.split(':')[0]} {_pct(v, 0)} (n={v['n']})" for k, v in ood.items()
                                 if k.endswith(": unknown intent"))
                     + "; real requests get it too: " + ", ".join(
                         f"{k.split(':')[0]} {_pct(v, 1)}"
                         + (f" (the gate: {_pct(ood[k.split(':')[0] + ': below the domain floor'], 1)})"
                            if k.split(':')[0] + ": below the domain floor" in ood else "")
                         for k, v in ood.items() if k.endswith("(wrongly)"))
                     + " (the rest: the signature head too unsure of the intent).")
    fz = r.get("fused_cut_detector")
    if fz and "ASR" in S:
        by = S["ASR"]["detection_by_rule"]
        alone = by.get(r["detection_rule"], S["ASR"]["detection"])
        fused = S["ASR"]["detection"] if S["ASR"]["rule"].startswith("parser + arbitrator") else \
            by.get("parser + arbitrator (how it was said)")
        lines.append("Through the recogniser the parser reads a transcript that may have misheard the end; how the words "
                     "were said carries the rest. The fused detector (logistic regression over the transcript's P(cut) "
                     f"and the arbitrator's P(end) {fz['delay_s']:g} s after the last speech the VAD heard, fitted on dev: "
                     f"F1 {100 * fz['dev_f1']:.1f} % against {100 * fz['dev_f1_parser_alone']:.1f} % for the parser "
                     f"alone; {'chosen' if fz['chosen'] else 'not chosen'}) reaches test F1 {_pct(fused['f1'])} "
                     f"where the parser alone on the transcript reaches {_pct(alone['f1'])}.")
    ep = r.get("endpointing")
    if ep and ep.get("test"):
        t = ep["test"]
        show = [n for n in t if not n.startswith("two-pass + parser") or n == ep.get("chosen_on_dev")]
        lines.append("End-pointing (quiet test subset, settings chosen on dev at "
                     f"{ep['budget_EP90_ms']:.0f} ms EP90): " + "; ".join(
                         f"{n} {t[n]['setting']}: cut-off {100 * t[n]['cutoff_rate']:.1f} %, EP90 {t[n]['EP90_ms']:.0f} ms"
                         for n in show if t[n].get("cutoff_rate") is not None)
                     + (f"; the parser-gated arbitrator against the two-pass alone, paired: "
                        f"{_pct(ep['parser_vs_two_pass_cutoff'])} cut-off"
                        + (" (within noise)" if ep['parser_vs_two_pass_cutoff'].get('within_noise') else "")
                        if ep.get("parser_vs_two_pass_cutoff") else "") + "."
                     + (" Left out, as they cannot reach the budget on dev (fastest dev EP90): " + ", ".join(
                         f"{n} {v:.0f} ms" for n, v in ep["fastest_dev_EP90_ms_of_variants_left_out"].items()) + "."
                        if ep.get("fastest_dev_EP90_ms_of_variants_left_out") else ""))
    lines.append(_prov(r, r.get("command") or "python -m workbench bench repair"))
    return "\n".join(lines)


def looktotalk(r: dict) -> str:
    S = r["systems"]
    rows = ["| cues (test) | EER | false accepts at 10 % false rejects | accuracy (dev threshold) | false rejects |",
            "|---|---|---|---|---|"]
    for name, s in S.items():
        label = name + (" *(visual simulated)*" if "visual" in s["cues"] else "")
        rows.append(f"| {label} | {_pct(s['EER'])} | {_pct(s['FAR at 10 % FRR'])} | "
                    f"{_pct(s['accuracy at the dev threshold'])} | {_pct(s['false rejects (requests)'])} |")
    full = S[" + ".join(("acoustic", "lexical", "visual"))]
    h, g, n = r["headline"], r["goals"], r["n"]
    lines = ["\n".join(rows), "",
             f"{n['test']} test utterances ({n['test_side_talk']} side talk from side-talk templates never trained on), "
             f"classifiers trained on {n['train']}, fusion and thresholds chosen on {n['dev']} dev utterances. "
             "Intervals: bootstrap over utterances (EER, false accepts), Wilson (rates). "
             "False accepts of the fused system by side-talk kind: " + ", ".join(
                 f"{k} {_pct(v, 0)}" for k, v in full["false accepts by side-talk kind"].items()) + ". "
             "Side talk is rendered faster and quieter 70 % of the time (a difference put in by construction); on "
             "the side talk delivered exactly like requests the acoustic cue's EER is "
             f"{_pct(r['acoustic EER, side talk delivered like requests only'])}.",
             f"Against the goals: fused EER {100 * h['fused EER']:.1f} % (goal ≤ {100 * g['fused EER']:.0f} %), "
             f"{h['fused EER / best single cue' + chr(39) + 's']:.2f}× the best single cue's ({r['best single cue']}; goal ≤ "
             f"{g['fused EER / best single cue' + chr(39) + 's']}×), decision p95 {h['decision ms p95']:.1f} ms after the "
             f"end-point (goal ≤ {g['decision ms p95']:.0f}): " + ", ".join(
                 f"{k} {'met' if ok else '**missed**'}" for k, ok in h["met"].items()) + ".",
             _prov(r, r.get("command") or "python -m workbench bench looktotalk")]
    if "running score" in r:          # the score read while speaking (the live widget's path)
        rs = r["running score"]
        names = {"half": "half of the speech heard", "end": "at the end of speech, before the recogniser's last words"}
        lines.insert(-1, "Running score (EER, fused with the camera / without it): " + "; ".join(
            f"{names.get(k, k)} ({v['heard_s_mean']:.1f} s on average) {_pct(v['acoustic + lexical + visual'])} / "
            f"{_pct(v['acoustic + lexical'])}" for k, v in rs.items()) + f"; after the end-point (above) "
            f"{_pct(full['EER'])} / {_pct(S['acoustic + lexical']['EER'])}.")
    if "diagnosis" in r:              # the lexical cue against a recogniser that heard side talk right
        d = r["diagnosis"]
        w, o = d["recogniser WER on test"], d["EER with reference transcripts"]
        lines.insert(-1, f"Where the lexical cue loses: the recogniser's WER is {_pct(w['requests'])} on the test requests "
                     f"and {_pct(w['side talk'])} on side talk. Every classifier retrained with the reference transcripts "
                     "instead (an oracle) reaches EER " + ", ".join(f"{k} {_pct(v)}" for k, v in o.items()) + ".")
    return "\n".join(lines)


def _num(ci: dict | None, digits: int = 2) -> str:
    if not ci or ci.get("value") is None or ci["value"] != ci["value"]:
        return "n/a"
    lo, hi = ci["ci95"]
    return f"{ci['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def codec(r: dict) -> str:
    rows = ["| system (test, clean) | rate | Whisper WER | Δ vs original (points) | our ASR WER | DNSMOS | "
            "speaker sim. | F0 corr. | RTF |", "|---|---|---|---|---|---|---|---|---|"]
    for name, s in r["systems"].items():
        rate = (f"{s['bitrate_bps'] / 1000:.3g} kbps @ {s['frame_rate_hz']:g} Hz" if s.get("bitrate_bps") and s.get("frame_rate_hz")
                else "16 kHz PCM" if name == "original" else "unquantised")
        d = s.get("wer_whisper_minus_original")
        delta = (f"{100 * d['value']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" if d else "")
        rows.append(f"| {name} | {rate} | {_pct(s['wer_whisper'])} | {delta} | {_pct(s['wer_ours'])} | "
                    f"{_num(s['dnsmos'])} | {_num(s.get('speaker_similarity'))} | {_num(s.get('f0_correlation'))} | "
                    f"{s['rtf']:.3f} |")
    c, g = r["codec"], r["goals"]
    t = c.get("training", {})
    d = g["whisper_wer_delta"]
    lines = ["\n".join(rows), "",
             f"{r['n_utterances']} clean test utterances ({r['audio_s'] / 60:.1f} min; voices and texts never trained on). "
             f"The codec: {t.get('params', 0) / 1e6:.1f} M parameters, {t.get('steps', '?')} steps in "
             f"{t.get('train_seconds', 0) / 60:.0f} min on {t.get('train_config', {}).get('threads', '?')} CPU thread(s), "
             f"{t.get('train_hours', '?')} h of speech. Intervals: bootstrap over utterances.",
             f"Against the goals: {c['frame_rate_hz']:g} Hz (goal ≤ 25) and {c['bitrate_bps']:.0f} bps (goal ≤ 2000) met; "
             f"Whisper WER {100 * d['value']:+.1f} points against the original (goal ≤ +3): "
             f"{'met' if g['whisper_wer_delta<=+3 points'] else '**missed**'}.",
             _prov(r, r.get("command") or "python -m workbench bench codec")]
    return "\n".join(lines)


def tts(r: dict) -> str:
    attrs = ("rate", "pitch", "range", "volume")
    rows = ["| system (held-out responses) | Whisper WER | our ASR WER | DNSMOS | sim. to target voice | "
            + " | ".join(f"{a} ρ" for a in attrs) + " | whisper AUC | fillers heard (Whisper / ours) | RTF | first audio p50 |",
            "|---|---|---|---|---|" + "---|" * len(attrs) + "---|---|---|---|"]
    for name, s in r["systems"].items():
        st = s.get("style", {})
        rho = [_num(st[a]["spearman"]) if a in st else "n/a" for a in attrs]
        auc = _num(st["whisper"]["auc"]) if "whisper" in st else "n/a"
        fill = (f"{s['fillers_whisper']['k']}/{s['fillers_whisper']['n']} / {s['fillers_ours']['k']}/"
                f"{s['fillers_ours']['n']}")
        rows.append(f"| {name} | {_pct(s['wer_whisper'])} | {_pct(s['wer_ours'])} | {_num(s['dnsmos'])} | "
                    f"{_num(s['speaker_similarity'])} | " + " | ".join(rho) + f" | {auc} | {fill} | {s['rtf']:.3f} | "
                    f"{s['first_audio_s']['p50']:.2f} s |")
    lines = ["\n".join(rows), "",
             f"{r['n_texts']} held-out responses (templates never trained on) for intelligibility, quality and speed; "
             f"style: every delivery tag in front of {r['n_style_texts']} more, each measured against the untagged "
             "rendering of the same text (Spearman ρ between requested and realised change, per attribute; whisper: "
             "ROC AUC of the voicing lost). Intervals: bootstrap over utterances (style: over (text, tag) pairs)."]
    fid = {n: s["fidelity"] for n, s in r["systems"].items() if s.get("fidelity")}
    if fid:
        tags = list(next(iter(fid.values())))
        lines += ["", "Per delivery tag, the cosine between requested and realised change (rate, pitch, range, volume, "
                  "voicing; 1 = exactly the requested direction; the tandem selection keeps a tag at ≥ 0.5):", "",
                  "| system | " + " | ".join(tags) + " |", "|---|" + "---|" * len(tags),
                  *[f"| {n} | " + " | ".join(f"{f[t]['cosine']:.2f}" for t in tags) + " |" for n, f in fid.items()]]
    tr = {n: s["training"] for n, s in r["systems"].items() if s.get("training")}
    if tr:
        lines += ["", "Training (same data, wall clock and optimiser): " + "; ".join(
            f"{n.split(' (')[0]}: {t['steps']} steps in {t['train_seconds'] / 60:.0f} min on "
            f"{t['train_config']['threads']} CPU thread(s), dev L1 {t['dev_losses']['l1_loss']:.3f}, "
            f"{t['params'] / 1e6:.1f} M parameters ({t['trainable_params'] / 1e6:.1f} M trained)" for n, t in tr.items()) + "."]
    tm = r.get("tandem")
    if tm:
        lines += ["", f"In tandem: of the {tm['as_written']['n']} delivery directions the {tm['tagger']} wrote on the "
                  f"held-out responses, the LTTS realises {_pct(tm['as_written'], 0)} as written and "
                  f"{_pct(tm['selected'], 0)} after the selection on its dev-measured realisation "
                  f"({tm['changed']} responses changed)."]
    lines.append(_prov(r, r.get("command") or "python -m workbench bench tts"))
    return "\n".join(lines)


def tagger(r: dict) -> str:
    t = r["test"]
    ex = t["examples"][:3]
    return "\n".join([
        f"Stage-direction tagger on {t['n']} responses from held-out templates: tag F1 {_num(t['tagger']['f1'])} (tag "
        f"and position; tag names alone {_num(t['tagger']['f1_names'])}); the keyword rule: {_num(t['rule']['f1'])}. "
        f"Goal F1 ≥ 0.8. {t['ms_per_response']:.0f} ms per response; {r['steps']} steps in {r['train_seconds'] / 60:.0f} "
        f"min on {r['config']['threads']} CPU threads.", "",
        "| plain | gold | tagger |", "|---|---|---|",
        *[f"| {e['plain']} | {e['gold']} | {e['tagged']} |" for e in ex], "",
        _prov(r, r.get("command") or "python -m workbench train-tagger")])


def s2s(r: dict) -> str:
    rows = ["| system (held-out turns) | task success | values said | translations | Whisper WER | prosody ρ | "
            "excited → excited | DNSMOS | sim. to assistant | first audio p50 / p95 | limit hit |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in r["systems"].items():
        p = s["prosody"]
        lat = (f"{s['first_audio_s']['p50']:.2f} / {s['first_audio_s']['p95']:.2f} s" if s.get("first_audio_s") else "—")
        rows.append(f"| {name} | {_pct(s['task_success'], 0)} | {_pct(s['values_said'], 0)} | "
                    f"{_pct(s['translation_success'], 0)} | {_pct(s['wer_whisper'])} | {_num(p['spearman'])} | "
                    f"{_pct(p['excited_answered_excitedly'], 0)} | {_num(s['dnsmos'])} | {_num(s['speaker_similarity'])} | "
                    f"{lat} | {_pct(s['truncated'], 0)} |")
    lines = ["\n".join(rows), "",
             f"{r['n_turns']} turns of the test split ({r['n_dialogue']} dialogue, the rest translation): held-out "
             "templates and speakers. Task success: every request value said back and the right intent's answer the "
             "nearest, from Whisper tiny.en's transcript (WER: dialogue turns; Whisper tiny.en hears English only). "
             "Prosody: Spearman ρ between the request's and the answer's arousal (F0 level, F0 range, energy); an "
             "excited request is answered excitedly when the answer's arousal is above the midpoint of the reference answers to excited and to neutral requests. First audio: from the "
             "end of the request to the first playable audio on this machine. Intervals: Wilson (rates), bootstrap "
             "over turns (the rest)."]
    casc = next((s for s in r["systems"].values() if s.get("request_asr_wer")), None)
    if casc:
        lines += ["", f"The cascade's recogniser on these requests (held-out voices, aroused delivery): WER "
                  f"{_pct(casc['request_asr_wer'])}; it fell back on {_pct(casc['fallbacks'], 0)} of the turns."]
    tr = r.get("training") or {}
    if tr:
        parts = []
        for k in sorted(tr):
            t = tr[k]
            secs = t.get("train_seconds")
            parts.append(f"stage {k}: " + (f"{t.get('steps', '?')} steps in {secs / 60:.0f} min" if secs else "no training")
                         + (f", dev {', '.join(f'{task} {m} {v:.3g}' for task, d in t['dev'].items() for m, v in d.items())}"
                            if isinstance(t.get("dev"), dict) else "")
                         + ("".join(f", dev preference ({kind}) {t['preference_before'][kind]['value']:.2f} → "
                                    f"{v['value']:.2f}" for kind, v in t["preference_after"].items())
                            if isinstance(t.get("preference_after"), dict) else ""))
        lines += ["", "Training (2 CPU threads): " + "; ".join(parts) + "."]
    lines.append(_prov(r, r.get("command") or "python -m workbench bench s2s"))
    return "\n".join(lines)


def asr_ledger(data: dict) -> str:
    """Every run of the shipped recogniser's ledger (``data/models/asr_small/ledger.json``) and the curve."""
    from ..asr.ledger import main_line
    runs = data["runs"]
    if not runs:
        return "(the ledger is empty: `python -m workbench train-asr ...` appends to it)"
    on_line = {r["id"] for r in main_line(data)}
    splits = list(dict.fromkeys(k for r in runs for k in r.get("dev_wer", {})))
    eou = list(dict.fromkeys(k for r in runs for k in r.get("eou_live", {})))
    rows = ["| run | from | steps (cum.) | CPU-h (cum.) | " + " | ".join(splits)
            + "".join(f" | <EOU> live at {c}: fired, median delay" for c in eou) + " | shipped | what changed |",
            "|---|---|---|---|" + "---|" * (len(splits) + len(eou)) + "---|---|"]
    for r in runs:
        cells = [("n/a" if s not in r["dev_wer"] else f"{100 * r['dev_wer'][s]['wer']:.1f}"
                  + (f" [{100 * r['dev_wer'][s]['ci95'][0]:.1f}, {100 * r['dev_wer'][s]['ci95'][1]:.1f}]"
                     if r["dev_wer"][s].get("ci95") else "")) for s in splits]
        for c in eou:
            e = r.get("eou_live", {}).get(c)
            cells.append("n/a" if not e else f"{100 * e['fired']:.0f} % [{100 * e['fired_ci95'][0]:.0f}, "
                         f"{100 * e['fired_ci95'][1]:.0f}], "
                         + ("-" if e["delay_s_median"] is None else f"{e['delay_s_median']:.2f} s"))
        rows.append(f"| {r['id']}{'' if r['id'] in on_line else ' (off the line)'} | {r.get('parent') or '-'} | "
                    f"{r['steps']:,} ({r['cumulative_steps']:,}) | {r['cpu_hours']:.2f} ({r['cumulative_cpu_hours']:.2f}) | "
                    + " | ".join(cells) + f" | {'yes' if r.get('shipped') else 'no'} | {r['changed']} |")
    return "\n".join(rows + ["", "Dev WER in % [95 % interval], greedy, offline at the largest lookahead (equal to "
                              "streaming), Whisper's normaliser; CPU-hours are user + system time of the training "
                              "process and its loader workers. <EOU> live: of 100 dev clean utterances streamed "
                              "on for 2 s after the speech and never finalised, the share where <EOU> came (95 % "
                              "interval) and its median delay after the end of speech (`asr-score-later --eou`). "
                              "The curve: `docs/figures/asr_ledger.png`.",
                              "", "![dev WER against cumulative CPU-hours](docs/figures/asr_ledger.png)"])


def asr_train(r: dict) -> str:
    """What bf16 buys the recogniser's training on this CPU (``bench asr-train``)."""
    rows = ["| precision | s per step (mean) | steps per hour | CPU-s per step | speed-up over fp32 |", "|---|---|---|---|---|"]
    for p, v in r["precisions"].items():
        rows.append(f"| {'fp32' if p == '32' else p} | {v['mean_step_s']:.2f} | {v['steps_per_hour']:,.0f} | "
                    f"{v['cpu_s_per_step']:.2f} | {v['speedup_vs_fp32']:.2f}x |")
    n = next(iter(r["precisions"].values()))
    return "\n".join(rows + ["", f"Profile `{r['profile']}`, {r['n_params'] / 1e6:.2f} M parameters, batch {n['batch_size']}, "
                              f"{r['repeats']} interleaved rounds of {r['steps_per_run']} steps per precision "
                              f"({n['n_steps']} timed steps each, the first of every run not counted).",
                              _prov(r, r["command"])])


LEDGER = ROOT / "data" / "models" / "asr_small" / "ledger.json"


def draw_ledger(ledger: Path = LEDGER, out: Path = ROOT / "docs" / "figures" / "asr_ledger.png") -> Path | None:
    """The ledger's curve as a PNG beside the docs (drawn by ``figures``, not checked byte for byte)."""
    if not ledger.is_file():
        return None
    import matplotlib
    matplotlib.use("Agg")
    from ..asr.ledger import plot_curve, read
    ax = plot_curve(read(ledger))
    out.parent.mkdir(parents=True, exist_ok=True)
    ax.figure.savefig(out, dpi=110, bbox_inches="tight")
    return out


BLOCKS = {"asr_ledger": (LEDGER, asr_ledger), "asr_train": ("bench_asr_train.json", asr_train), "s2s": ("bench_s2s.json", s2s), "tagger": ("bench_tagger.json", tagger), "tts": ("bench_tts.json", tts), "codec": ("bench_codec.json", codec), "looktotalk": ("bench_looktotalk.json", looktotalk), "batching": ("bench_batching.json", batching), "endpoint": ("bench_endpoint.json", endpoint),
          "asr": ("bench_asr.json", asr), "asr_splits": ("bench_asr_splits.json", asr_splits),
          "rescoring": ("bench_rescoring.json", rescoring), "repair": ("bench_repair.json", repair)}


def render(text: str, results: Path = RESULTS) -> str:
    for name, (fname, fn) in BLOCKS.items():
        pat = re.compile(rf"(<!-- figures:{name} -->\n)(.*?)(<!-- /figures:{name} -->)", re.S)
        if not pat.search(text):
            continue
        path = results / fname
        body = fn(json.loads(path.read_text())) if path.is_file() else f"(no result yet: run the bench; {fname} missing)"
        text = pat.sub(lambda m: m.group(1) + body + "\n" + m.group(3), text)
    return text


def main(check: bool = False, readme: Path = README, results: Path = RESULTS) -> int:
    old = readme.read_text()
    new = render(old, results)
    if check:
        if new != old:
            print(f"{readme} is out of date with {results}: run `python -m workbench figures`")
            return 1
        return 0
    readme.write_text(new)
    if readme == README:
        draw_ledger()
    return 0
