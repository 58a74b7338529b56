#!/usr/bin/env python3
"""Write the seed corpus fuzz/corpus/seed-* for fuzz/iopool-fuzz.c.

Each seed is a small program in the harness's input language (see the
top of iopool-fuzz.c): byte 0 chooses the pool, then each call is an
opcode byte and its argument bytes.  The fuzzer mutates from these;
make check replays them (tests/fuzz-replay).  Run from anywhere:
    python3 fuzz/make-seeds.py
"""
import os

# Opcodes: submits 0-17 take (flags, a, b, c) (+1 byte for readv/writev).
READ, WRITE, READV, WRITEV, CALL, OPENAT, CLOSE, FSYNC, FDATASYNC, FSTAT, \
    STATAT, READFILE, FTRUNCATE, FALLOCATE, RENAMEAT, UNLINKAT, MKDIRAT, \
    LISTDIR = range(18)
CANCEL, POLL, WAIT, BUDGET, AWAIT, AWAIT_T, BEGIN, END, LINK, GNEW, GADD, \
    GSEAL, GCANCEL, PRIO, DEADLINE, LANE, SETLANE, LANECAP, THREADS, \
    STATS, STATE, DESTROY, BAD = range(18, 41)
FUT, NULLP = 1, 0x80
CB_SUBMIT, CB_POLL, CB_WAIT, CB_DESTROY, CB_CANCEL, CB_BUDGET = \
    (2, 4, 6, 8, 10, 12)


def waits(n=4):
    return [WAIT, 3] * n


SEEDS = {
    "read": [0,
             READ, 0, 0, 3, 0, READ, 0, 0, 2, 2, READ, 0, 0, 3, 3,
             READ, 0, 1, 3, 0, READ, 0, 4, 1, 0, READ, 0, 3, 0, 0,
             READ, 0, 2, 1, 0, READ, 0, 0, 6, 0, READ, 0, 0, 1, 7,
             READ, NULLP, 0, 1, 0, READ, NULLP, 0, 0, 0] + waits(6),
    "write-vec": [1,
                  WRITE, 0, 0, 3, 0, WRITE, 0, 0, 2, 3, WRITE, 0, 1, 1, 0,
                  WRITE, 0, 3, 1, 0, WRITE, 0, 0, 6, 0,
                  READV, 0, 0, 2, 3, 0, READV, 0, 0, 1, 2, 1,
                  READV, 0, 0, 3, 3, 0, READV, 0, 0, 4, 3, 0,
                  WRITEV, 0, 0, 2, 3, 0, WRITEV, 0x40, 0, 5, 3, 0,
                  WRITEV, NULLP, 0, 1, 1, 0] + waits(6),
    "futures": [2,
                READ, FUT, 0, 3, 0, CALL, FUT, 5, 0, 0, FSTAT, FUT, 0, 0, 0,
                AWAIT, 0, AWAIT, 1, AWAIT_T, 2, 1, AWAIT, 2],
    "chain": [0,
              BEGIN, 0, WRITE, 0, 0, 3, 0, FSYNC, FUT, 0, 0, 0,
              READ, 0, 0, 3, 0, LINK, 0, 1, LINK, 1, 2, END, 0,
              AWAIT, 1] + waits(),
    "chain-cut": [1,
                  BEGIN, 0, READ, 0, 4, 1, 0, CALL, 0, 7, 0, 0,
                  CALL, FUT, 8, 0, 0, LINK, 0, 1, LINK, 1, 2, LINK, 2, 0,
                  LINK, 0, 0, END, 0, AWAIT, 2] + waits(),
    "cancel-held": [0,
                    BEGIN, 0, CALL, 0, 1, 1, 0, CALL, FUT, 2, 0, 0,
                    LINK, 0, 1, CANCEL, 0, END, 0, AWAIT, 1] + waits(),
    "cancel-running": [0,
                       CALL, 0, 1, 1, 0, CALL, FUT, 2, 1, 0,
                       CALL, 0, 3, 0, 0, WAIT, 1, CANCEL, 0, CANCEL, 1,
                       CANCEL, 2, AWAIT, 1] + waits(),
    "groups": [2,
               GNEW, 0, GNEW, 0, BEGIN, 0, CALL, 0, 1, 0, 0,
               CALL, 0, 2, 1, 0, READ, FUT, 4, 1, 0, GADD, 0, 0, GADD, 0, 1,
               GADD, 1, 2, GADD, 0, 0, END, 0, GSEAL, 0, GSEAL, 0,
               GSEAL, 1, GCANCEL, 1, AWAIT, 2] + waits(),
    "lanes": [1,
              LANE, 0, LANE, 1, BEGIN, 0, CALL, 0, 1, 1, 0,
              CALL, 0, 2, 0, 0, CALL, FUT, 3, 0, 0, SETLANE, 0, 0,
              SETLANE, 1, 1, SETLANE, 0, 2, DEADLINE, 1, 1,
              DEADLINE, 2, 0, PRIO, 0, 9, PRIO, 1, 0, PRIO, 2, 10,
              END, 0, LANECAP, 0, 2, LANECAP, 1, 0, AWAIT, 2] + waits(),
    "inline": [6,
               CALL, 0, 1, 0, 0, BEGIN, 0, CALL, 0, 2, 0, 0,
               READ, FUT, 0, 3, 0, LINK, 1, 2, DEADLINE, 1, 2, END, 0,
               THREADS, 1, 2, AWAIT, 2] + waits(),
    "bounded-fail": [0x20] + [CALL, 0, 1, 1, 0] * 6 + waits(),
    "bounded-block": [0x20 | 0x40] + [CALL, 0, 1, 1, 0] * 4 +
    [BEGIN, 0] + [CALL, 0, 2, 0, 0] * 4 + [END, 0] + waits(),
    "bounded-inline": [0x28] + [CALL, 0, 1, 1, 0] * 4 +
    [BEGIN, 0, CALL, 0, 2, 0, 0, CALL, 0, 3, 0, 0, LINK, 4, 5, END, 0] +
    waits(),
    "bad-options": [7, DESTROY, 15, DESTROY, 23, DESTROY, 31, DESTROY, 39,
                    DESTROY, 47, DESTROY, 55, CALL, 0, 1, 0, 0] + waits(2),
    "callbacks": [1,
                  CALL, CB_SUBMIT, 1, 0, 0, CALL, CB_POLL, 2, 0, 0,
                  CALL, CB_WAIT, 3, 0, 0, CALL, CB_DESTROY, 4, 0, 0,
                  CALL, CB_CANCEL, 5, 1, 0, CALL, CB_BUDGET, 6, 0, 0,
                  CALL, 0, 7, 1, 0] + waits(6),
    "destroy-busy": [0,
                     CALL, 0, 1, 1, 0, CALL, 0, 2, 1, 0, CALL, FUT, 3, 1, 0,
                     CALL, CB_SUBMIT, 4, 1, 0, BEGIN, 0, CALL, 0, 5, 0, 0,
                     DESTROY, 1, CALL, 0, 6, 0, 0, DESTROY, 6,
                     CALL, FUT, 7, 0, 0] + waits(2),
    "paths": [2,
              OPENAT, 0, 0, 0, 0, OPENAT, 0, 1, 0, 0, OPENAT, 0, 2, 0, 0,
              OPENAT, 0, 3, 0, 0, OPENAT, 0, 4, 0, 0, OPENAT, NULLP, 0, 0, 0,
              STATAT, 0, 0, 0, 0, STATAT, FUT, 1, 0, 0, STATAT, 0, 0, 1, 0,
              READFILE, 0, 0, 0, 0, READFILE, FUT, 1, 0, 0,
              READFILE, 0, 2, 0, 0, READFILE, NULLP, 0, 0, 0,
              LISTDIR, 0, 0, 1, 0, LISTDIR, FUT, 1, 0, 0,
              LISTDIR, 0, 2, 0, 0, LISTDIR, 0, 0, 2, 0,
              UNLINKAT, 0, 0, 0, 0, UNLINKAT, 0, 1, 0, 0,
              UNLINKAT, 0, 2, 0, 0, MKDIRAT, 0, 0, 0, 0,
              RENAMEAT, 0, 0, 0, 0, RENAMEAT, 0, 1, 0, 0,
              RENAMEAT, 0, 1, 1, 0, AWAIT, 7, AWAIT, 11] + waits(8),
    "fd-ops": [0,
               CLOSE, 0, 1, 0, 0, CLOSE, 0, 0, 0, 0, FSYNC, 0, 0, 0, 0,
               FSYNC, 0, 1, 0, 0, FDATASYNC, 0, 0, 0, 0, FSTAT, 0, 0, 0, 0,
               FSTAT, 0, 1, 0, 0, FSTAT, NULLP, 0, 0, 0,
               FTRUNCATE, 0, 0, 2, 0, FTRUNCATE, 0, 1, 0, 0,
               FTRUNCATE, 0, 0, 3, 0, FALLOCATE, 0, 0, 0, 1,
               FALLOCATE, 0, 0, 2, 0, FALLOCATE, 0, 0, 0, 2] + waits(6),
    "bad-calls": [1, BAD, 0, BEGIN, 0, END, 0, END, 0, STATS, 0,
                  THREADS, 0, 0, THREADS, 3, 1, THREADS, 0x80, 2,
                  THREADS, 1, 2],
    "await-held": [0,
                   BEGIN, 0, CALL, FUT, 1, 0, 0, CALL, 0, 2, 0, 0,
                   AWAIT, 0, AWAIT, 1, STATE, 0, END, 0, STATE, 0,
                   AWAIT_T, 0, 0, AWAIT, 0] + waits(),
    "budget": [2] + [CALL, 0, 1, 0, 0] * 8 +
    [WAIT, 3, BUDGET, 1, BUDGET, 2, BUDGET, 7, POLL, 0] + waits(),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, prog in SEEDS.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(bytes(b & 0xff for b in prog))


if __name__ == "__main__":
    main()
