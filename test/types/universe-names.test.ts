/**
 * A universe made from a literal knows its app names as types (issue 11 item 5): `npm run typecheck` compiles
 * this file, and each `@ts-expect-error` below fails the type check if the misspelt name were accepted. At run
 * time the same calls are refused by name, before any system call.
 */
import { describe, expect, it } from 'vitest';
import { ClientSession, SessionServer, Universe } from '../../src/index.js';

const universe = new Universe({
  apps: [{ name: 'pricer' }],
  servers: [{ name: 'feed', acceptedClients: ['pricer'] }],
});

/** The call's error, thrown at once or rejected. */
const refused = async (call: () => Promise<unknown>): Promise<unknown> => call();

describe('a universe from a literal', () => {
  it('its names type-check, misspelt ones do not (and are refused at run time)', async () => {
    // Compiles: the names of the definition.
    const good = () => ClientSession.connect({ universe, clientApp: 'pricer', serverApp: 'feed' });
    const goodServer = () => SessionServer.start({ universe, serverApp: 'feed' });
    expect(typeof good).toBe('function');
    expect(typeof goodServer).toBe('function');

    // @ts-expect-error 'fed' is not an app of the universe
    await expect(refused(() => ClientSession.connect({ universe, clientApp: 'pricer', serverApp: 'fed' }))).rejects.toThrow(/fed/);
    // @ts-expect-error 'pricer' is an app, not a server
    await expect(refused(() => ClientSession.connect({ universe, clientApp: 'pricer', serverApp: 'pricer' }))).rejects.toThrow(/pricer/);
    // @ts-expect-error 'pricr' is not an app of the universe
    await expect(refused(() => ClientSession.connect({ universe, clientApp: 'pricr', serverApp: 'feed' }))).rejects.toThrow(/pricr/);
    // @ts-expect-error a server must be a server app
    await expect(refused(() => SessionServer.start({ universe, serverApp: 'pricer' }))).rejects.toThrow(/pricer/);
    expect(() => new Universe({
      apps: [{ name: 'pricer' }],
      // @ts-expect-error accepted clients must be apps of the universe
      servers: [{ name: 'feed', acceptedClients: ['pricr'] }],
    })).toThrow(/pricr/);
  });

  it('a definition known only at run time takes any name', () => {
    const parsed = JSON.parse('{"apps":[{"name":"a"}],"servers":[{"name":"s","acceptedClients":["a"]}]}') as
      ConstructorParameters<typeof Universe>[0];
    const loose = new Universe(parsed);
    const options: Parameters<typeof ClientSession.connect>[0] = { universe: loose, clientApp: 'anything', serverApp: 'else' };
    expect(options.serverApp).toBe('else');
  });
});
