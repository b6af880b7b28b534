/*
 * The wake-up protocol of one direction of a shm channel (src/channel/ring.ts, wakeup.ts, delivery-loop.ts),
 * for the spin model checker. One producer writes records into a ring; one consumer reads them. Neither may
 * sleep forever while the other has work for it: a lost wake-up is a state where both sleep on their doorbells
 * (spin reports it as an invalid end state), or the consumer finishes with messages unread (assertion).
 *
 *   ring, used      records in flight and the space they take (write count - read count), in units
 *   want            the want-drain word: 0, or the units of free space the refused producer waits for
 *   parked          the consumer's parked word: 1 = "I sleep, ring me"
 *   bellC, bellP    a datagram pending on the consumer's / producer's doorbell; ringing a bell that is already
 *                   pending adds nothing (a coalesced ring, or EAGAIN on a full doorbell queue)
 *
 * Each statement is one atomic step of the real code (a load, a store, a compare-and-swap, publishing a
 * count); every interleaving of the two processes is explored. Record sizes are chosen freely (1 or BIG
 * units) for each message, so a big record refused while the ring is full of small ones is covered.
 *
 * Variants (-D on the spin command line), each expected to FAIL:
 *   BUGGY       the protocol before the fix: the consumer takes any request for room after any read, and a
 *               producer woken without room goes back to sleep without asking again
 *   LOSSY_BELL  a ring may be lost although the sender thinks it is pending (the old shared, unconnected
 *               sender socket: EAGAIN from its own full send buffer read as "the peer has rings queued")
 *   LATE_PARK   the consumer looks at the ring before publishing parked = 1 (the order that matters)
 * Run: docs/model/check.sh (also run by test/channel/wakeup-model.test.ts).
 */
#ifndef N
#define N 5
#endif
#define CAP 4
#define BIG 3

chan ring = [CAP] of { byte };
byte used;
byte want;
bit parked = 1;
bit bellC;
bit bellP;
byte received;

inline ring_bell(b) {
#ifdef LOSSY_BELL
  if
  :: b = 1
  :: skip
  fi
#else
  b = 1
#endif
}

/* src/channel/ring.ts askForRoom(): publish the request, then look once more. */
inline ask_for_room(size, granted) {
  if
  :: used + size <= CAP -> granted = 1
  :: else ->
     want = size;
     if
     :: used + size <= CAP -> want = 0; granted = 1
     :: else -> granted = 0
     fi
  fi
}

active proctype Producer() {
  byte sent = 0;
  byte size;
  bit granted;
  do
  :: sent == N -> break
  :: else ->
     if
     :: size = 1
     :: size = BIG
     fi;
write:
     ask_for_room(size, granted);
     if
     :: granted ->
        atomic { ring!size; used = used + size };  /* the record, then the write count: the commit point */
        sent++;
        /* wakePeer(): ring only a consumer that said it sleeps; the CAS lets one writer ring */
        if
        :: atomic { parked == 1 -> parked = 0 }; ring_bell(bellC)
        :: atomic { parked == 0 -> skip }
        fi
     :: else ->
blocked:
        atomic { bellP == 1 -> bellP = 0 };  /* sleep until our doorbell rings */
        /* Channel.checkDrain(): is there room for the refused record now? */
#ifdef BUGGY
        if
        :: used + size <= CAP -> goto write
        :: else -> goto blocked
        fi
#else
        ask_for_room(size, granted);
        if
        :: granted -> goto write
        :: else -> goto blocked
        fi
#endif
     fi
  od
}

/* src/channel/ring.ts takeDrainRequest(), after the read count was published. */
inline take_drain_request() {
#ifdef BUGGY
  if
  :: atomic { want > 0 -> want = 0 }; ring_bell(bellP)
  :: atomic { want == 0 -> skip }
  fi
#else
  if
  :: atomic { want > 0 && CAP - used >= want -> want = 0 }; ring_bell(bellP)
  :: atomic { !(want > 0 && CAP - used >= want) -> skip }
  fi
#endif
}

active proctype Consumer() {
  byte size;
busy:
  parked = 0;  /* busy: writers need not ring */
  do
  :: atomic { ring?size -> used = used - size };  /* read a record, publish the read count */
     received++;
     if
     :: skip                  /* the batch goes on */
     :: take_drain_request()  /* the batch ends here (its limit) */
     fi
  :: atomic { empty(ring) -> skip };
     take_drain_request();    /* the batch ends: nothing more to read */
     break
  od;
  if
  :: received == N -> goto done
  :: else -> skip
  fi;
#ifdef LATE_PARK
  if
  :: nempty(ring) -> goto busy
  :: empty(ring) -> skip
  fi;
  parked = 1;
#else
  parked = 1;  /* "ring me" ... */
  if
  :: nempty(ring) -> goto busy  /* ... then look once more: a writer that did not see parked = 1 did not ring */
  :: empty(ring) -> skip
  fi;
#endif
  atomic { bellC == 1 -> bellC = 0 };  /* sleep until our doorbell rings */
  goto busy;
done:
  assert(used == 0 && len(ring) == 0)
}
