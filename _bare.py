import time, runpy, sys, logging
logging.disable(logging.WARNING)
import streamlit as st
src = open("pages/filters.py").read()
code = compile(src, "pages/filters.py", "exec")
for i in range(4):
    t = time.perf_counter(); exec(code, {"__name__": "__main__"}); print(f"bare run {i}: {(time.perf_counter()-t)*1000:.0f} ms")
import cProfile, pstats
pr = cProfile.Profile(); pr.enable(); exec(code, {"__name__": "__main__"}); pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(25)
