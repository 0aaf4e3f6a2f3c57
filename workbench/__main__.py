"""python -m workbench <command>: the workbench's jobs, for shells, Makefiles and cron.

Heavy libraries (NeMo, ESPnet, papermill) are imported inside each command, so --help is instant.
"""
from __future__ import annotations

import argparse
import sys
import time

from .scale import add_trainer_args, trainer_kwargs


def _corpus(args) -> int:
    from .data import build_corpus, corpus_name
    from .data.corpus import DEFAULT_ROOT
    import json
    t0 = time.time()
    root = args.root or DEFAULT_ROOT
    existed = (root / corpus_name(args.size, args.seed) / "corpus.json").exists() if not args.force else False
    path = build_corpus(args.size, args.seed, root, workers=args.workers, force=args.force)
    meta = json.loads((path / "corpus.json").read_text())
    state = "already built" if existed else f"built in {time.time() - t0:.0f} s"
    print(f"corpus {path} ({state}): {meta['total_hours']:.2f} h, "
          + ", ".join(f"{s} {v['utterances']} utt/{v['speakers']} spk" for s, v in meta["splits"].items()))
    engines: dict = {}
    for v in meta["splits"].values():
        for e, k in (v.get("engines") or {}).items():
            engines[e] = engines.get(e, 0) + k
    if engines:
        print("utterances per engine: " + ", ".join(f"{e} {k}" for e, k in sorted(engines.items())))
    return 0


def _sweep(args) -> int:
    from .reports.runner import ReportError
    from .reports.sweep import run_sweep
    try:
        res = run_sweep(args.grid, out_root=args.out, date=args.date, address=args.address, num_cpus=args.num_cpus,
                        check_bench=bench_argv_error)
    except ReportError as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 2
    return 0 if res["ok"] else 1


def bench_argv_error(argv: list[str]) -> str | None:
    """Why ``python -m workbench bench <argv>`` would be refused (argparse's own words), or None: the sweep
    checks its bench cells with this before anything runs."""
    import contextlib
    import io
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            build_parser().parse_args(["bench", *argv])
    except SystemExit as e:
        return (err.getvalue().strip().splitlines() or [f"exit {e.code}"])[-1] if e.code else "it only prints help"
    return None


def _workshop(args) -> int:
    import json
    from .exercises.workshop import WorkshopError, write_workshop
    try:
        res = write_workshop(args.out)
    except WorkshopError as e:
        print(f"workshop: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1))
    return 0


def _report(args) -> int:
    from .reports.runner import ReportError, run_reports
    params: list[tuple[str, str]] = [tuple(p) for p in args.param or []]
    try:
        result = run_reports(args.notebooks or None, params=params, param_file=args.param_file,
                             out_root=args.out, date=args.date, no_input=args.no_input, timeout=args.timeout)
    except ReportError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    return 0 if result.ok else 1


def _train_asr(args) -> int:
    if args.backend == "espnet":
        from .asr.espnet_backend import train_espnet
        out = train_espnet(args.corpus_size, out_dir=args.out, work_dir=args.work, max_epoch=args.epochs,
                           iters_per_epoch=args.iters_per_epoch, n_eval=args.n_eval, extra=args.overrides,
                           ctc_weight=args.ctc_weight, init_from=args.init_from, lr=args.lr,
                           warmup_steps=args.warmup_steps, exp_name=args.exp_name, resume=args.resume,
                           tokenizer_from=args.tokenizer_from)
        print(f"model, config and metrics in {out}")
        return 0
    from .asr.recipe import train
    out = train(args.profile, args.overrides, out_dir=args.out, work_dir=args.work, resume=args.resume,
                init_from=args.init_from, ledger=args.ledger, note=args.note, lean_memory=args.lean_memory)
    print(f"model, config and metrics in {out}")
    return 0


def _score_later(args) -> int:
    from .asr import ledger as L
    from .asr.recipe import MODELS
    from .data import ensure_corpus
    try:
        run = L.score_later(args.ledger or MODELS / "asr_small" / L.LEDGER_NAME, args.run, args.export,
                            ensure_corpus(args.corpus_size, 0), args.splits, args.heads, eou=args.eou)
    except L.LedgerError as e:
        print(f"asr-score-later: {e}", file=sys.stderr)
        return 2
    print({k: v["wer"] for k, v in run["dev_wer"].items() if isinstance(v, dict)})
    if run.get("eou_live"):
        print({"eou_live": run["eou_live"]})
    return 0


def _ship_asr(args) -> int:
    from .asr.recipe import ShipRefusedError, ship
    try:
        ship(args.export, force=args.force)
    except ShipRefusedError as e:
        print(f"ship-asr: {e}", file=sys.stderr)
        return 2
    return 0


def _train_arbitrator(args) -> int:
    from .endpoint.arbitrator import train
    out = train(args.model, corpus_size=args.corpus_size, n_train=args.n_train, n_dev=args.n_dev,
                epochs=args.epochs, out=args.out, context=[int(v) for v in args.context.split(",")])
    print(f"arbitrator and metrics in {out}")
    return 0


def _train_lm(args) -> int:
    import json
    from .lm.domain import DomainLMConfig, train_from_corpus
    cfg = DomainLMConfig(max_steps=args.max_steps, hidden_size=args.hidden_size, layers=args.layers)
    meta = train_from_corpus(args.corpus_size, out=args.out, cfg=cfg,
                             trainer_kwargs=trainer_kwargs(args))
    print(json.dumps({k: meta[k] for k in ("params", "steps", "train_seconds", "perplexity", "ranks")}, indent=1))
    return 0


def _train_looktotalk(args) -> int:
    import json
    from .looktotalk.bench import run
    from .looktotalk.models import MODEL_DIR
    res = run(args.corpus_size, n_train=args.n_train, n_dev=args.n_dev, n_test=args.n_test, epochs=args.epochs,
              threads=args.threads, save_models=args.out or MODEL_DIR, out_dir=args.report,
              results_dir=args.results, command="python -m workbench train-looktotalk")
    print(json.dumps({"saved": res["saved_models"], "headline": res["headline"]}, indent=1))
    return 0


def _train_codec(args) -> int:
    import json
    if args.peer == "soundstream":
        from .codec.recipe import prepare
        from .codec.soundstream import train_soundstream
        from .data import ensure_corpus, is_clean, open_dataset
        corpus = ensure_corpus(args.corpus_size)
        data = prepare(args.corpus_size, "train", args.n_train, workers=2)
        want = set(data["ids"])
        ds = open_dataset(corpus, "train").filter(is_clean)
        audios = [ds.audio(i) for i, e in enumerate(ds.entries) if e["id"] in want]
        dv = open_dataset(corpus, "dev").filter(is_clean)
        meta = train_soundstream(audios, [dv.audio(i) for i in range(min(64, len(dv)))], out=args.out,
                                 max_minutes=args.minutes or 25.0, max_steps=args.max_steps,
                                 threads=args.threads or 1)
    else:
        from .codec.recipe import TrainConfig, train_codec
        cfg = TrainConfig(train_utterances=args.n_train, max_minutes=args.minutes or 13.0, max_steps=args.max_steps,
                          threads=args.threads or 2)
        meta = train_codec(args.corpus_size, out=args.out, cfg=cfg,
                           trainer_kwargs=trainer_kwargs(args))
    print(json.dumps(meta, indent=1))
    return 0


def _train_tts(args) -> int:
    import json
    from .tts.ltts import TTSConfig
    from .tts.recipe import TrainTTSConfig, train_tts
    cfg = TrainTTSConfig(tts=TTSConfig(system=args.system, lm=args.lm), n_train=args.n_train,
                         max_minutes=args.minutes, max_steps=args.max_steps, threads=args.threads)
    meta = train_tts(out=args.out, cfg=cfg, trainer_kwargs=trainer_kwargs(args))
    print(json.dumps(meta, indent=1, default=str))
    return 0


def _train_s2s(args) -> int:
    import json
    from dataclasses import replace
    from .s2s.recipe import PROFILES, S2SConfig, train_s2s
    cfg = S2SConfig(**PROFILES[args.profile])
    if args.n_train:
        cfg.n_train = args.n_train
    if args.threads:
        cfg.threads = args.threads
    if args.minutes_scale != 1.0:
        for s in ("stage1", "stage2", "stage4", "stage5"):
            setattr(cfg, s, replace(getattr(cfg, s), minutes=getattr(cfg, s).minutes * args.minutes_scale))
    rec = train_s2s(args.stage, cfg, out=args.out, trainer_kwargs=trainer_kwargs(args))
    print(json.dumps({s: {k: v for k, v in r.items() if k in ("steps", "train_seconds", "dev", "preference_after")}
                      for s, r in rec.items()}, indent=1, default=str))
    return 0


def _train_tagger(args) -> int:
    import json
    from .tts.tagger import TaggerConfig, train_tagger
    cfg = TaggerConfig(lm=args.lm, n_train=args.n_train, max_steps=args.max_steps, max_minutes=args.minutes,
                       threads=args.threads)
    meta = train_tagger(out=args.out, cfg=cfg, trainer_kwargs=trainer_kwargs(args),
                        results_dir=args.results)
    print(json.dumps({k: meta[k] for k in ("steps", "train_seconds")} | {"test": {k: meta["test"][k] for k in
                                                                                   ("n", "tagger", "rule")}},
                     indent=1, default=str))
    return 0


def _train_parser(args) -> int:
    import json
    from .repair.parser import ParserConfig, train_from_corpus
    cfg = ParserConfig(n_train=args.n_train, max_steps=args.max_steps, lr=args.lr, batch_size=args.batch_size)
    meta = train_from_corpus(args.corpus_size, out=args.out, cfg=cfg,
                             trainer_kwargs=trainer_kwargs(args),
                             asr_from=args.asr_from)
    print(json.dumps({k: meta[k] for k in ("params", "train_examples", "asr_train_examples", "train_seconds",
                                           "threshold", "threshold_asr", "dev")}, indent=1))
    return 0


def _train_reranker(args) -> int:
    import json
    from .rescoring.mwer import MWERConfig, train_from_corpus
    cfg = MWERConfig(scorer=args.scorer, max_steps=args.max_steps, val_every=args.val_every, lists_per_step=args.lists_per_step,
                     top_layers=args.top_layers, lora_r=args.lora_r, lr=args.lr,
                     train_weights=tuple(w for w in args.train_weights.split(",") if w))
    if args.profile == "gpu":       # an accelerator: bf16, more lists per step, every device Lightning sees
        cfg.trainer_kwargs = {"accelerator": "gpu", **trainer_kwargs(args), "precision": "bf16-mixed"}
    else:
        cfg.trainer_kwargs = trainer_kwargs(args)
    rec = train_from_corpus(args.asr_model, args.corpus_size, args.out, args.base, args.n_train, args.n_val, cfg=cfg,
                            train_split=args.train_split)
    print(json.dumps({k: rec[k] for k in ("train_lists", "steps", "best_step", "dev_wer", "w_lm", "w_len",
                                          "train_seconds", "trainable_params")}, indent=1))
    return 0


def _bench(args) -> int:
    import json
    from .results import ROOT, DirtyTreeError, require_committed
    if args.results is not None and args.results.resolve() == (ROOT / "benchmarks" / "results").resolve():
        # the committed evidence comes from a committed tree (or says it does not)
        try:
            require_committed(args.allow_dirty, f"bench {args.what}")
        except DirtyTreeError as e:
            print(f"bench: {e}", file=sys.stderr)
            return 2
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)      # recorded in the result's provenance
    if args.what == "asr-train":
        from .asr.bench import run_train_speed
        res = run_train_speed(profile=args.train_profile, steps=args.n or 30, out_dir=args.out, results_dir=args.results)
        print(json.dumps(res["precisions"], indent=1))
        return 0
    if args.what == "asr" and args.splits_only:
        from .asr.bench import run_splits
        res = run_splits(args.model, n_splits=args.n_splits or 100, peers=not args.no_peers, out_dir=args.out,
                         results_dir=args.results, corpus_size=args.corpus_size, device=args.device,
                         systems=args.systems.split(",") if args.systems else None)
        print(json.dumps({sys: {s: f"{100 * v['wer']:.1f} % [{100 * v['ci95'][0]:.1f}, {100 * v['ci95'][1]:.1f}] n={v['n']}"
                                for s, v in row.items()} for sys, row in res["splits"]["table"].items()}, indent=1))
        print(json.dumps({"rtf": res["splits"]["rtf"], "wall_s": res["wall_s"], "out_dir": res["out_dir"]}, indent=1))
        return 0
    if args.what == "asr":
        from .asr.bench import run
        thresholds = [float(t) for t in args.thresholds.split(",")] if args.thresholds else None
        res = run(args.model, n=args.n or 200, n_dev=args.n_dev or 200, split=args.split, out_dir=args.out,
                  corpus_size=args.corpus_size, device=args.device, results_dir=args.results,
                  n_splits=args.n_splits, peers=not args.no_peers,
                  **({"thresholds": thresholds} if thresholds else {}))
        show = {k: res[k] for k in ("n_utterances", "n_dev_utterances", "goals", "rtf", "peak_rss_mb", "out_dir")}
        if "splits" in res:
            show["splits"] = {sys: {s: f"{100 * v['wer']:.1f} % [{100 * v['ci95'][0]:.1f}, {100 * v['ci95'][1]:.1f}] n={v['n']}"
                                    for s, v in row.items()} for sys, row in res["splits"]["table"].items()}
            show["splits_rtf"] = res["splits"]["rtf"]
        show["chosen_on_dev"] = res["dev"]["chosen"]
        show["test"] = [{k: p.get(k) for k in ("policy", "wer", "wer_ci95", "wer_clean", "wer_clean_ci95", "latency_ms")}
                        for p in res["fixed"] + res["dynamic"]]
        if "espnet" in res:
            show["espnet"] = res["espnet"]
        print(json.dumps(show, indent=1))
        return 0
    if args.what == "repair":
        from .repair.bench import run
        res = run(args.parser, n=args.n, asr=not args.no_asr, out_dir=args.out, results_dir=args.results,
                  threads=args.threads or 2, asr_model=args.model, endpoint=not args.no_endpoint)
        print(json.dumps({"headline": res["headline"], "detection_rule": res["detection_rule"],
                          "wall_s": res["wall_s"], "out_dir": res["out_dir"]}, indent=1))
        return 0
    if args.what == "codec":
        from .codec.bench import run
        res = run(n=args.n or 100, corpus_size=args.corpus_size, split=args.split, out_dir=args.out,
                  results_dir=args.results, command="python -m workbench bench codec" + (f" --n {args.n}" if args.n else ""))
        print(json.dumps({k: res[k] for k in ("goals", "seconds")}, indent=1, default=str))
        return 0
    if args.what == "tts":
        from .tts.bench import run
        res = run(n=args.n or 40, out_dir=args.out, results_dir=args.results,
                  command="python -m workbench bench tts" + (f" --n {args.n}" if args.n else ""))
        print(json.dumps({k: {m: v.get(m) for m in ("wer_whisper", "dnsmos", "rtf")} for k, v in res["systems"].items()},
                         indent=1, default=str))
        return 0
    if args.what == "s2s":
        from .s2s.bench import run
        res = run(n=args.n or 48, out_dir=args.out, results_dir=args.results,
                  command="python -m workbench bench s2s" + (f" --n {args.n}" if args.n else ""))
        print(json.dumps({k: {m: v.get(m) for m in ("task_success", "wer_whisper", "first_audio_s")}
                          for k, v in res["systems"].items()}, indent=1, default=str))
        return 0
    if args.what == "looktotalk":
        from .looktotalk.bench import run
        res = run(args.corpus_size, n_test=args.n or 500, out_dir=args.out, results_dir=args.results,
                  threads=args.threads or 2)
        print(json.dumps({"headline": res["headline"], "wall_s": res["wall_s"], "out_dir": res["out_dir"]}, indent=1))
        return 0
    if args.what == "rescoring":
        from .rescoring.bench import run
        res = run(args.model, n=args.n, n_dev=args.n_dev, beam=args.beam, out_dir=args.out,
                  results_dir=args.results)
        show = {s: {k: f"{100 * v['wer']['value']:.1f} % [{100 * v['wer']['ci95'][0]:.1f}, {100 * v['wer']['ci95'][1]:.1f}]"
                    f" p95 {v['latency_ms']['p95']['value']:.0f} ms" for k, v in r["systems"].items()}
                | {"oracle": f"{100 * r['oracle']['wer']['value']:.1f} %"} for s, r in res["sets"].items()}
        print(json.dumps({"sets": show, "systems": res["systems"], "wall_s": res["wall_s"], "out_dir": res["out_dir"]},
                         indent=1))
        return 0
    if args.what == "batching":
        from .batching.bench import run
        res = run(args.model, out_dir=args.out, corpus_size=args.corpus_size, split=args.split,
                  target_batch=args.target_batch, max_wait_ms=args.max_wait_ms, pause_ms=args.pause_ms,
                  duration_s=args.duration, device=args.device, n_utts=min(args.n or 200, 200),
                  repeats=args.repeats, nemo_peer=not args.no_nemo_peer, results_dir=args.results,
                  context=[int(v) for v in args.context.split(",")] if args.context else (70, 1),
                  **({"grid": tuple(int(v) for v in args.grid.split(","))} if args.grid else {}))
        show = {k: res.get(k) for k in ("device", "context", "chunk_ms", "ratio", "ratio_spread",
                                     "ratio_vs_single_chunk_front_end", "ratio_vs_nemo_pipeline", "targets", "end_of_speech",
                                     "flush_within_one_chunk", "step_time_by_batch", "wall_s", "out_dir")}
        for key in ("single", "single_chunk_front_end", "batched", "batched_no_flush", "nemo_pipeline"):
            if key not in res:
                continue
            best = res[key]["sustained_streams"]
            at = [r for r in res[key]["runs"] if r["streams"] == best]
            show[key] = {"sustained_streams": best, "spread": [res[key]["sustained_worst"], res[key]["sustained_best"]],
                         **({k: at[0].get(k) for k in ("added_latency_ms", "device_busy_fraction",
                                                       "mean_batch", "batch_fill", "repeats")} if at else {})}
        print(json.dumps(show, indent=1))
        return 0
    if args.what == "endpoint":
        from .endpoint.bench import run
        res = run(args.model, arbitrator_path=args.arbitrator, corpus_size=args.corpus_size, split=args.split,
                  n=args.n or 200, n_dev=args.n_dev or 300, out_dir=args.out, device=args.device, results_dir=args.results,
                  context=[int(v) for v in args.context.split(",")] if args.context else (70, 1))
        show = {k: res[k] for k in ("n_utterances", "n_dev_utterances", "n_noisy", "wall_s", "out_dir")}
        for key in ("all", "quiet"):
            rep = res[key]
            show[key] = {"dev_budget_EP90_ms": rep["dev"]["budget_EP90_ms"], "selected_on_dev": rep["dev"]["selected"],
                         "two_pass_cutoff_over_pause": rep["two_pass_cutoff_over_pause"],
                         "goal_halved": rep["goal_halved"], "goal_halved_beyond_noise": rep["goal_halved_beyond_noise"],
                         "test": {n: {k: r.get(k) for k in ("setting", "EP50_ms", "EP90_ms", "cutoff_rate", "n")}
                                  | ({"cutoff_ci95": r["ci"]["cutoff_rate"]["ci95"], "EP90_ci95": r["ci"]["EP90_ms"]["ci95"]}
                                     if "ci" in r else {})
                                  for n, r in rep["test"]["rows"].items()},
                         "vs_pause": {n: v["cutoff_diff"] for n, v in rep["test"]["vs_baseline"].items()}}
        print(json.dumps(show, indent=1, default=str))
        return 0
    print(f"bench: unknown benchmark {args.what!r}", file=sys.stderr)
    return 2


def _open_text(args) -> int:
    from .lm.open_text import write
    print(f"[open-text] wrote {write(args.n, args.seed, args.out, batch=args.batch)}")
    return 0


def _figures(args) -> int:
    from .reports.figures import main
    return main(check=args.check)


def build_parser() -> argparse.ArgumentParser:
    from pathlib import Path
    p = argparse.ArgumentParser(prog="python -m workbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="command", required=True)

    c = sub.add_parser("corpus", help="synthesise the offline speech corpus into data/corpus/ (espeak-ng)")
    c.add_argument("--size", default="default", choices=["smoke", "default", "large", "open"],
                   help="smoke: seconds, for tests; default: hours, trains the small model; large: for a GPU; "
                        "open: SmolLM2's sentences beyond the templates (open-text)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--root", type=Path, default=None, help="parent folder (default: data/corpus)")
    c.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    c.add_argument("--force", action="store_true", help="rebuild even if the corpus exists")
    c.set_defaults(func=_corpus)

    r = sub.add_parser("report", help="run notebooks with papermill into reports/<date>/ (+ HTML, index, summary)")
    r.add_argument("notebooks", nargs="*", help="notebook paths or names (default: every notebook in notebooks/)")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="parameter for every notebook that declares it (VALUE parsed as YAML)")
    r.add_argument("-f", "--param-file", type=Path, help="YAML: parameters for all, and per notebook under its name")
    r.add_argument("--out", type=Path, default=None, help="report root (default: reports/)")
    r.add_argument("--date", default=None, help="folder name (default: today, YYYY-MM-DD)")
    r.add_argument("--no-input", action="store_true", help="hide code cells in the HTML")
    r.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    r.set_defaults(func=_report)
    sw = sub.add_parser("sweep", help="a YAML grid of notebook or bench runs as Ray tasks into reports/<date>/sweep-<name>/ "
                        "with one comparison page; cells that succeeded before are skipped")
    sw.add_argument("grid", type=Path, help="the grid (see workbench.reports.sweep; e.g. notebooks/sweeps/endpointing.yaml)")
    sw.add_argument("--address", default=None, help="a running Ray cluster: auto, or ray://host:10001 (default: "
                    "Ray on this machine's cores)")
    sw.add_argument("--num-cpus", type=int, default=None, help="local Ray: cores to use (default: all)")
    sw.add_argument("--out", type=Path, default=None, help="report root (default: reports/)")
    sw.add_argument("--date", default=None, help="folder name (default: today, YYYY-MM-DD)")
    sw.set_defaults(func=_sweep)
    ws = sub.add_parser("workshop", help="a student copy of the notebooks (solution cells replaced by stubs, checks "
                        "kept) in OUT/student and a teacher copy (solutions and their source) in OUT/teacher")
    ws.add_argument("out", type=Path)
    ws.set_defaults(func=_workshop)
    t = sub.add_parser("train-asr", help="train the streaming NeMo model (hybrid RNNT+CTC, <EOU>, several lookaheads)")
    t.add_argument("--profile", default="small", help="small (2-core CPU, ~2 h) | gpu | path/to/profile.yaml")
    t.add_argument("--out", type=Path, default=None, help="export folder (default: data/models/asr_<profile>)")
    t.add_argument("--work", type=Path, default=None, help="checkpoints and logs (default: data/cache/asr_<profile>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the work folder's last checkpoint (optimiser, schedule, step, data position); "
                        "with none there, the shipped model with a fresh optimiser")
    t.add_argument("--ledger", type=Path, default=None,
                   help="nemo only: the ledger this run is appended to (default: data/models/asr_small/ledger.json "
                        "for every run on a non-smoke corpus)")
    t.add_argument("--note", default="", help="nemo only: what this run changed, for the ledger")
    t.add_argument("--lean-memory", action="store_true",
                   help="nemo only: keep the trainer's heap flat (~2 GB instead of ~9 GB on whisper_open, ~25 %% slower "
                        "per step), for a run beside other work")
    t.add_argument("--init-from", type=Path, default=None,
                   help="start from a .nemo's weights and tokenizer (e.g. the shipped model) with a fresh schedule")
    t.add_argument("--backend", choices=["nemo", "espnet"], default="nemo",
                   help="espnet: contextual-block conformer through espnet2's ASR task -> data/models/asr_espnet_small")
    t.add_argument("--epochs", type=int, default=10, help="espnet only: training epochs")
    t.add_argument("--corpus-size", default="default", help="espnet only: corpus size (nemo: corpus.size=...)")
    t.add_argument("--iters-per-epoch", type=int, default=None, help="espnet only: batches per epoch (default: one pass)")
    t.add_argument("--n-eval", type=int, default=None, help="espnet only: test utterances scored at export (default: all)")
    t.add_argument("--ctc-weight", type=float, default=0.3, help="espnet only: CTC share of the training loss")
    t.add_argument("--lr", type=float, default=1e-3, help="espnet only: peak learning rate (warmuplr)")
    t.add_argument("--warmup-steps", type=int, default=500, help="espnet only: warmup steps")
    t.add_argument("--exp-name", default="exp", help="espnet only: experiment folder inside --work (one per stage)")
    t.add_argument("--tokenizer-from", default=None,
                   help="espnet only: keep this SentencePiece model (e.g. data/models/asr_espnet_small/bpe.model) "
                        "instead of training one, so --init-from an export loads every weight")
    t.add_argument("overrides", nargs="*", help="profile overrides, e.g. trainer.max_time=00:00:30:00 trainer.devices=4")
    t.set_defaults(func=_train_asr)
    sc = sub.add_parser("asr-score-later", help="score a recorded run's export on ledger dev splits it was not scored "
                        "on (by default its CTC head on dev and Asterisk adapt_dev: what the encoder hears without "
                        "the prediction network); added to its entry, never overwriting")
    sc.add_argument("--splits", nargs="+", default=["dev", "asterisk adapt_dev"],
                    help='ledger dev splits, e.g. "dev open text" (once corpus size open exists)')
    sc.add_argument("--heads", nargs="+", default=["ctc"], choices=["ctc", "rnnt"])
    sc.add_argument("--eou", action="store_true", help="instead: whether <EOU> comes while the stream is live (100 dev "
                    "clean utterances continued 2 s after the speech, never finalised), at lookaheads 1 and 13")
    sc.add_argument("--run", required=True, help="the ledger's run id, e.g. r008")
    sc.add_argument("--export", type=Path, required=True, help="that run's export folder (its model.nemo)")
    sc.add_argument("--ledger", type=Path, default=None, help="default: data/models/asr_small/ledger.json")
    sc.add_argument("--corpus-size", default="default")
    sc.set_defaults(func=_score_later)
    sa = sub.add_parser("ship-asr", help="make a train-asr export the shipped model when the ledger shows it beats the "
                                         "shipped one on every dev split")
    sa.add_argument("export", type=Path, help="the export folder (model.nemo, config.yaml, metrics.json)")
    sa.add_argument("--force", action="store_true", help="ship even where it is worse on a dev split (said so)")
    sa.set_defaults(func=_ship_asr)
    a = sub.add_parser("train-arbitrator", help="train the two-pass end-pointer's arbitrator on the default ASR model's streaming outputs")
    a.add_argument("--model", type=Path, default=None, help="ASR .nemo (default: the shipped model)")
    a.add_argument("--corpus-size", default="default")
    a.add_argument("--n-train", type=int, default=1500, help="training utterances (those with pauses/truncation first)")
    a.add_argument("--n-dev", type=int, default=300)
    a.add_argument("--epochs", type=int, default=30)
    a.add_argument("--context", default="70,1", help="the recogniser's attention context")
    a.add_argument("--out", type=Path, default=None, help="default: data/models/arbitrator")
    a.set_defaults(func=_train_arbitrator)
    lmp = sub.add_parser("train-lm", help="train the domain LM (a small Llama, random init) on the corpus's training text")
    lmp.add_argument("--corpus-size", default="default")
    lmp.add_argument("--max-steps", type=int, default=1500)
    lmp.add_argument("--hidden-size", type=int, default=192)
    lmp.add_argument("--layers", type=int, default=6)
    add_trainer_args(lmp)
    lmp.add_argument("--out", type=Path, default=None, help="default: data/models/lm_domain")
    lmp.set_defaults(func=_train_lm)
    rr = sub.add_parser("train-reranker", help="fine-tune an LLM (LoRA, MWER loss) to rerank the recogniser's n-best")
    rr.add_argument("--asr-model", type=Path, default=None, help=".nemo that decodes the lists (default: the shipped one)")
    rr.add_argument("--base", default=None, help="causal LM by name or path (default: SmolLM2-135M-Instruct, offline)")
    rr.add_argument("--corpus-size", default="default")
    rr.add_argument("--train-split", choices=["fresh", "dev", "train"], default="dev",
                    help="fresh: --n-train new sentences by the dev speakers (speech the recogniser never heard); "
                         "dev: the dev lists after the first --n-val; train: the training split (audio the "
                         "recogniser was trained on)")
    rr.add_argument("--n-train", type=int, default=3500, help="fresh/train: utterances learnt from")
    rr.add_argument("--n-val", type=int, default=200, help="dev utterances the kept adapter is chosen on")
    rr.add_argument("--scorer", choices=["lm", "head"], default="lm",
                    help="head: a scalar head on the end symbol's hidden state (starts at the word bonus alone); "
                         "lm: the LM's log-probability, weighted")
    rr.add_argument("--max-steps", type=int, default=300)
    rr.add_argument("--val-every", type=int, default=50)
    rr.add_argument("--lists-per-step", type=int, default=4)
    rr.add_argument("--top-layers", type=int, default=8)
    rr.add_argument("--lora-r", type=int, default=8)
    rr.add_argument("--lr", type=float, default=1e-3)
    rr.add_argument("--train-weights", default="w_lm",
                    help="comma-separated score weights that train (w_lm, w_len; empty: the adapter alone)")
    rr.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    add_trainer_args(rr)
    rr.add_argument("--out", type=Path, default=None, help="default: data/models/reranker_mwer")
    rr.set_defaults(func=_train_reranker)
    tl = sub.add_parser("train-looktotalk", help="train the look-to-talk classifiers and fusion (bench looktotalk's "
                        "recipe) and ship them in data/models/looktotalk for the live widget")
    tl.add_argument("--corpus-size", default="default")
    tl.add_argument("--n-train", type=int, default=800, help="requests and as many side-talk utterances")
    tl.add_argument("--n-dev", type=int, default=300)
    tl.add_argument("--n-test", type=int, default=500)
    tl.add_argument("--epochs", type=int, default=15)
    tl.add_argument("--threads", type=int, default=2)
    tl.add_argument("--out", type=Path, default=None, help="default data/models/looktotalk")
    tl.add_argument("--report", type=Path, default=None, help="where its measurement goes (default reports/bench/DATE)")
    tl.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                    help="the same JSON again here (the README's figures are generated from it)")
    tl.set_defaults(func=_train_looktotalk)
    tc = sub.add_parser("train-codec", help="train the learned speech encoding (WORLD-parameter codec, 25 Hz, "
                        "1.6 kbps, semantic first codebook) into data/models/codec; --peer soundstream trains "
                        "ESPnet's SoundStream on the same data and budget into data/models/codec_soundstream")
    tc.add_argument("--corpus-size", default="default")
    tc.add_argument("--n-train", type=int, default=4000, help="clean train utterances")
    tc.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the training loop (default: 13 with 2 threads; the peer "
                    "25 with 1 thread: about the same CPU time)")
    tc.add_argument("--max-steps", type=int, default=20000)
    tc.add_argument("--threads", type=int, default=None, help="torch threads (default 2; the peer 1)")
    tc.add_argument("--peer", choices=["soundstream"], default=None)
    add_trainer_args(tc)
    tc.add_argument("--out", type=Path, default=None)
    tc.set_defaults(func=_train_codec)
    tt = sub.add_parser("train-tts", help="train a synthesiser on the expressive corpus of the assistant's voice: "
                        "--system ltts (the LM with LoRA as FastSpeech2's encoder, trained in tandem) into "
                        "data/models/tts_ltts, or --system baseline (FastSpeech2's own encoder) into "
                        "data/models/tts_baseline")
    tt.add_argument("--system", choices=["ltts", "baseline"], default="ltts")
    tt.add_argument("--lm", default="domain", help="domain (data/models/lm_domain), smollm2, or an LM folder")
    tt.add_argument("--n-train", type=int, default=2400, help="expressive utterances rendered for training")
    tt.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget of the training loop")
    tt.add_argument("--max-steps", type=int, default=20000)
    tt.add_argument("--threads", type=int, default=2)
    add_trainer_args(tt)
    tt.add_argument("--out", type=Path, default=None)
    tt.set_defaults(func=_train_tts)
    ts = sub.add_parser("train-s2s", help="train the speech-to-speech LM in five stages (1 modality pretraining, 2 "
                        "intermodal alignment, 3 initialisation, 4 multitask fine-tuning, 5 DPO alignment); stage "
                        "checkpoints in data/cache/s2s/stages, stage 5 into data/models/s2s")
    ts.add_argument("--stage", default="all", choices=["1", "2", "3", "4", "5", "all"],
                    help="one stage (each starts from the one before) or all in order")
    ts.add_argument("--profile", choices=["cpu", "gpu"], default="cpu",
                    help="cpu: the domain LM, 1,200 dialogues, ~2 h on 2 cores; gpu: SmolLM2-135M, 8,000 dialogues")
    ts.add_argument("--n-train", type=int, default=0, help="dialogues rendered for training (0: the profile's)")
    ts.add_argument("--minutes-scale", type=float, default=1.0, help="scale every stage's wall-clock budget")
    ts.add_argument("--threads", type=int, default=0)
    add_trainer_args(ts)
    ts.add_argument("--out", type=Path, default=None)
    ts.set_defaults(func=_train_s2s)
    tg = sub.add_parser("train-tagger", help="fine-tune the LM into the stage-direction tagger (plain response -> "
                        "tagged) into data/models/tagger; scored on held-out templates")
    tg.add_argument("--lm", default="domain", help="domain (data/models/lm_domain), smollm2, or an LM folder")
    tg.add_argument("--n-train", type=int, default=6000, help="(plain, tagged) training pairs")
    tg.add_argument("--max-steps", type=int, default=1200)
    tg.add_argument("--minutes", type=float, default=10.0)
    tg.add_argument("--threads", type=int, default=2)
    add_trainer_args(tg)
    tg.add_argument("--out", type=Path, default=None)
    tg.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                    help="the held-out score as bench_tagger.json here (the README's figure)")
    tg.set_defaults(func=_train_tagger)
    tp = sub.add_parser("train-parser", help="train the repair room's text-to-graph parser (the domain LM + heads)")
    tp.add_argument("--corpus-size", default="default")
    tp.add_argument("--n-train", type=int, default=40000, help="sampled training texts, half of them cut off")
    tp.add_argument("--max-steps", type=int, default=1500)
    tp.add_argument("--batch-size", type=int, default=64)
    tp.add_argument("--asr-from", type=int, default=4000,
                    help="also learn from the recogniser's transcripts of the dev speakers' split extended to this "
                         "many utterances (the first 500, the dev split, choose the transcripts' threshold); 0: text only")
    tp.add_argument("--lr", type=float, default=1e-3)
    add_trainer_args(tp)
    tp.add_argument("--out", type=Path, default=None, help="default: data/models/repair_parser")
    tp.set_defaults(func=_train_parser)
    b = sub.add_parser("bench", help="benchmarks that print JSON and write JSON + plots into reports/bench/<date>/")
    b.add_argument("what", choices=["asr", "asr-train", "batching", "endpoint", "rescoring", "repair", "looktotalk", "codec", "tts",
                                      "s2s"],
                   help="asr: WER/latency per lookahead and dynamic lookahead, RTF, memory; "
                        "asr-train: training steps per hour of the recogniser in fp32 and bf16 (--n steps each); "
                        "batching: streams sustained in real time, batched vs one at a time, latencies")
    b.add_argument("--model", type=Path, default=None, help=".nemo (default: data/models/asr_small/model.nemo)")
    b.add_argument("--n", type=int, default=None, help="utterances of the split (default 200; rescoring: all)")
    b.add_argument("--n-dev", type=int, default=None,
                   help="asr/endpoint: dev utterances the settings are chosen on (default 200 / 300)")
    b.add_argument("--train-profile", default="small_mx",
                   help="asr-train: the profile timed (its start: the shipped model when it is of that design)")
    b.add_argument("--allow-dirty", action="store_true",
                   help="run from a tree with uncommitted changes (the JSON and its tables say so)")
    b.add_argument("--results", type=Path, default=Path("benchmarks/results"),
                   help="where the committed JSON evidence goes (with commit, date, machine)")
    b.add_argument("--split", default="test")
    b.add_argument("--beam", type=int, default=8, help="rescoring: beam size (n-best length)")
    b.add_argument("--n-splits", type=int, default=100,
                   help="asr: utterances per set of the per-split table with the peers (0: no table)")
    b.add_argument("--no-peers", action="store_true", help="asr: the per-split table without Whisper and PocketSphinx")
    b.add_argument("--splits-only", action="store_true",
                   help="asr: only the per-split table (a model against the peers) -> bench_asr_splits.json")
    b.add_argument("--systems", default=None,
                   help="asr --splits-only: which systems, comma-separated (nemo,espnet,whisper-tiny,whisper-base,"
                        "pocketsphinx; default all)")
    b.add_argument("--corpus-size", default="default")
    b.add_argument("--thresholds", default=None, help="comma-separated cascade thresholds")
    b.add_argument("--device", default=None, help="cpu | cuda (default: a GPU when present)")
    b.add_argument("--out", type=Path, default=None)
    b.add_argument("--target-batch", type=int, default=16, help="batching: run when this many chunks are ready")
    b.add_argument("--max-wait-ms", type=float, default=40.0, help="batching: ... or when the oldest waited this long")
    b.add_argument("--pause-ms", type=float, default=300.0, help="batching: VAD silence that flushes a stream")
    b.add_argument("--duration", type=float, default=20.0, help="batching: seconds of (virtual) time per load level")
    b.add_argument("--arbitrator", type=Path, default=None, help="endpoint: arbitrator folder (default data/models/arbitrator)")
    b.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's, one per core); recorded with the result")
    b.add_argument("--repeats", type=int, default=3,
                   help="batching: runs per configuration and stream count, interleaved; the median decides")
    b.add_argument("--parser", type=Path, default=None, help="repair: parser folder (default data/models/repair_parser)")
    b.add_argument("--no-asr", action="store_true", help="repair: text only, no decoding")
    b.add_argument("--no-endpoint", action="store_true", help="repair: leave out the end-pointer consulting the parser")
    b.add_argument("--no-nemo-peer", action="store_true", help="batching: leave NeMo's own pipeline out")
    b.add_argument("--grid", default=None, help="batching: stream counts to try, e.g. 1,2,4,8 (default up to 128)")
    b.add_argument("--context", default=None, help="batching/endpoint: attention context (default 70,1: 160 ms chunks)")
    b.set_defaults(func=_bench)
    ot = sub.add_parser("open-text", help="open-vocabulary sentences written offline by SmolLM2 for the corpus size "
                        "'open' (data/text/open_sentences.txt)")
    ot.add_argument("--n", type=int, default=6000)
    ot.add_argument("--seed", type=int, default=0)
    ot.add_argument("--batch", type=int, default=32)
    ot.add_argument("--out", type=Path, default=Path("data/text/open_sentences.txt"))
    ot.set_defaults(func=_open_text)
    f = sub.add_parser("figures", help="regenerate the README's tables from benchmarks/results/*.json")
    f.add_argument("--check", action="store_true", help="exit 1 when the README disagrees with the results")
    f.set_defaults(func=_figures)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
