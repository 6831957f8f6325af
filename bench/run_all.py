"""Run every benchmark and write one JSON file and one Markdown table.

The benchmarks run one after another, each on a network of its own:

- ``bench_handover``: hand-over cost, against a simple_switch_13
  baseline;
- ``bench_dhcp``: perfdhcp against the controller and Kea;
- ``bench_tunnel``: throughput and RTT at home and roaming;
- ``bench_scale``: the rules and register benchmarks, and hand-overs
  with more bindings and more cells.

A benchmark that fails is recorded with its error and the others still
run.

Run as root from the repository::

    .venv/bin/python bench/run_all.py            # the full set
    .venv/bin/python bench/run_all.py --quick    # smaller, a few minutes
    .venv/bin/python bench/run_all.py --only handover,tunnel

It writes bench/results/<time>.json (every figure, per move and per
step) and bench/results/<time>.md (the summary table, then a section
per benchmark), prints the summary table, and keeps logs under
/var/tmp/tmip-bench/<time>/.  It asserts nothing about speed; it exits
1 only if a benchmark could not run.
"""

import argparse
import os
import sys
import time
import traceback

import bench_dhcp
import bench_handover
import bench_scale
import bench_tunnel
import harness

BENCHMARKS = {'handover': bench_handover, 'dhcp': bench_dhcp,
              'tunnel': bench_tunnel, 'scale': bench_scale}


def run_benchmarks(names, quick, run_root):
    """Run the named benchmarks; return {name: results or error dict}."""
    results = {}
    for name in names:
        module = BENCHMARKS[name]
        started = time.monotonic()
        print('== %s%s' % (name, ' (quick)' if quick else ''), flush=True)
        try:
            results[name] = module.run(
                quick=quick, run_dir=harness.new_run_dir(name, run_root))
        except Exception as error:  # noqa: BLE001 - record, run the rest
            results[name] = {'benchmark': name, 'error': '%s: %s' % (
                type(error).__name__, error),
                'traceback': traceback.format_exc()}
            print('%s failed: %s' % (name, results[name]['error']),
                  flush=True)
        results[name]['seconds'] = round(time.monotonic() - started, 1)
    return results


def summary(results):
    """Return [benchmark, figure, value, target] rows of every benchmark."""
    rows = []
    for name, figures in _in_order(results):
        if 'error' in figures:
            rows.append([name, 'did not run', figures['error'], ''])
            continue
        for row in BENCHMARKS[name].summary_rows(figures):
            rows.append([name] + row)
    return rows


def _in_order(results):
    """Return (name, results) pairs in the order the benchmarks run."""
    return [(name, results[name]) for name in BENCHMARKS if name in results]


def machine_line(machine):
    """Return one sentence describing the machine and its load."""
    return ('%s, %d CPUs, %s GiB, %s, kernel %s, Open vSwitch %s '
            '(userspace datapath), Python %s; load average %s at start, '
            '%s at end; %d other ryu-manager processes and %d other OVS '
            'bridges at start.' % (
                machine['cpu_model'], machine['nproc'],
                machine['memory_gib'], machine['os'], machine['kernel'],
                machine['ovs_version'], machine['python'],
                '/'.join('%.2f' % value
                         for value in machine['load_average']),
                '/'.join('%.2f' % value
                         for value in machine['load_average_end']),
                machine['other_ryu_managers'], machine['other_bridges']))


def markdown(document):
    """Return the Markdown report: machine, summary, one section each."""
    source = document['machine']['source']
    lines = ['# tmip_ryu benchmarks, %s\n' % document['started'],
             'Command: `%s` at commit %s%s\n' % (
                 document['command'], source['commit'],
                 ' with uncommitted changes to the code under test'
                 if source['uncommitted_changes'] else ''),
             'Machine: %s\n' % machine_line(document['machine']),
             harness.markdown_table(['benchmark', 'figure', 'value',
                                     'target'], summary(document['results']))]
    for name, figures in _in_order(document['results']):
        if 'error' in figures:
            lines.append('\n## %s\n\nDid not run: %s\n'
                         % (name, figures['error']))
            continue
        lines.append('\n' + BENCHMARKS[name].markdown(figures))
    return '\n'.join(lines)


def print_table(rows):
    """Print summary rows as aligned text."""
    for benchmark, figure, value, target in rows:
        print('%-9s %-58s %s%s' % (benchmark, figure, value,
                                   '  [target %s]' % target if target
                                   else ''))


def parse_arguments(argv=None):
    """Return the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='smaller runs of every benchmark (a few '
                             'minutes in all)')
    parser.add_argument('--only', type=lambda text: text.split(','),
                        default=list(BENCHMARKS),
                        help='comma-separated benchmarks to run, from %s '
                             '(default all)' % ','.join(BENCHMARKS))
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in BENCHMARKS]
    if unknown:
        parser.error('--only: unknown benchmark %s; choose from %s'
                     % (', '.join(unknown), ', '.join(BENCHMARKS)))
    return args


def main(argv=None):
    """Run the benchmarks, write the results and print the table."""
    args = parse_arguments(argv)
    if os.geteuid() != 0:
        print('run_all.py needs root (Mininet and Open vSwitch); run it '
              'with sudo')
        return 2
    harness.prepare_process()
    stamp = harness.timestamp()
    run_root = os.path.join(harness.RUNS_DIR, stamp)
    document = {'started': stamp, 'quick': args.quick,
                'command': ' '.join(['.venv/bin/python', 'bench/run_all.py']
                                    + (argv if argv is not None
                                       else sys.argv[1:])),
                'machine': harness.describe_machine(), 'run_dir': run_root}
    document['results'] = run_benchmarks(args.only, args.quick, run_root)
    document['machine']['load_average_end'] = harness.load_average()
    paths = harness.write_results(document, markdown(document), stamp)
    print()
    print_table(summary(document['results']))
    print('\nresults: %s and %s; logs under %s' % (paths + (run_root,)))
    failed = [name for name, figures in document['results'].items()
              if 'error' in figures]
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
