# An adapter of the client conformance harness (conformance/README.md, "The adapter
# contract"): it runs the original design document's Python client
# (testdata/seed/python_client.py) as it is, with the harness's URL, prints the
# content of each chunk it receives, and exits 0 once it logged complete. The seed
# client sends its own query text, which the cases do not depend on.
import builtins, os, runpy, sys

url, _query = sys.argv[1], sys.argv[2]
seed = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../testdata/seed/python_client.py")
show = builtins.print

def print(line="", *args, **kwargs):  # what the seed client logs, turned into the contract's stdout
    if isinstance(line, str) and line.startswith("< chunk: "):
        sys.stdout.write(line[len("< chunk: "):])
        sys.stdout.flush()
    else:
        show(line, *args, file=sys.stderr)

builtins.print = print
sys.argv = [seed, url]
runpy.run_path(seed, run_name="__main__")  # an exception (a dropped connection) exits 1
