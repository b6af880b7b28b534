import { describe, expect, it } from 'vitest';
import { canTransition, type SessionState } from '../../src/session/lifecycle.js';

const STATES: SessionState[] = ['open', 'closing', 'closed', 'faulted'];

describe('session state machine', () => {
  it('allows exactly the documented moves', () => {
    const allowed = STATES.flatMap((from) => STATES.filter((to) => canTransition(from, to)).map((to) => `${from}→${to}`));
    expect(allowed.sort()).toEqual([
      'closing→closed', 'closing→faulted',
      'faulted→closed',
      'open→closing', 'open→faulted',
    ].sort());
  });

  it('closed is terminal and nothing leads back to open', () => {
    for (const to of STATES) expect(canTransition('closed', to)).toBe(false);
    for (const from of ['closing', 'closed', 'faulted'] as SessionState[]) expect(canTransition(from, 'open')).toBe(false);
  });
});
