/**
 * The universe: one shared description of the apps that may talk to each other. Server and client programs
 * import the same definition, so both sides agree on names, identities and permissions.
 */
import { isAbsolute, join } from 'node:path';
import { checkAppName } from '../cleanup/names.js';
import { defaultRunDirectory } from './run-directory.js';

/** An app: a program that takes part in sessions. `Name` is its name's literal type where it is known. */
export interface AppDefinition<Name extends string = string> {
  /** Unique app name (`[a-z0-9][a-z0-9_-]{0,31}`). */
  name: Name;
  /** When set, the server checks the peer process runs this executable (readlink /proc/<pid>/exe). */
  executablePath?: string;
  /** When set, the peer must run as this user id (SO_PEERCRED). */
  uid?: number;
  /** When set, the peer must run as this group id (SO_PEERCRED). */
  gid?: number;
}

/** Who may connect to a server: its socket and segments get mode 0600, 0660 or 0666. */
export type PermissionLevel = 'user' | 'group' | 'unrestricted';

/** An app that accepts sessions. `Client` is the type of the names it may accept. */
export interface ServerAppDefinition<Name extends string = string, Client extends string = string> extends AppDefinition<Name> {
  /** Names of the client apps it accepts. */
  acceptedClients: Client[];
  /** Default `user`. */
  permissions?: PermissionLevel;
  /** Where its socket and instance lock live. Default: per user — `$XDG_RUNTIME_DIR/shmx` when usable (and the
   *  level is `user`), else `<os tmpdir>/shmx-<uid>` (the app's `uid` when named); see run-directory.ts. Every
   *  process of the universe must compute the same path: give one explicitly when they run in different
   *  environments (a service without XDG_RUNTIME_DIR and a login shell with it, say). */
  runDirectory?: string;
}

/** Mode bits of a permission level. */
export function permissionMode(level: PermissionLevel): number {
  return level === 'user' ? 0o600 : level === 'group' ? 0o660 : 0o666;
}

/**
 * What a {@link Universe} is made from. Written as a literal (or `as const`), its app names become types: `A`
 * the plain apps, `S` the servers.
 */
export interface UniverseDefinition<A extends string = string, S extends string = string> {
  apps: readonly AppDefinition<A>[];
  servers: readonly ServerAppDefinition<S, NoInfer<A | S>>[];
}

/**
 * A validated, immutable set of app definitions.
 *
 * Made from a literal definition, a universe knows its app names as types, and `ClientSession.connect` and
 * `SessionServer.start` accept only those: a misspelt `serverApp` is a compile error there, not an ENOSERVER at
 * run time. A definition read at run time (JSON) gives `Universe<string, string>`: any name type-checks, and the
 * constructor and the calls check names as before.
 *
 * @typeParam A names of the apps that only connect
 * @typeParam S names of the server apps
 */
export class Universe<A extends string = string, S extends string = string> {
  /** @internal Carries the app names' types (never set; see the class comment). */
  declare readonly names?: { apps: A; servers: S };
  private readonly apps = new Map<string, AppDefinition>();
  private readonly servers = new Map<string, Required<Omit<ServerAppDefinition, keyof AppDefinition>> &
    ServerAppDefinition>();

  constructor(definition: UniverseDefinition<A, S>) {
    if (typeof definition !== 'object' || definition === null) throw new TypeError('universe must be an object');
    for (const app of [...(definition.apps ?? []), ...(definition.servers ?? [])]) {
      checkAppName(app.name);
      for (const key of ['uid', 'gid'] as const) {
        const v = app[key];
        if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new RangeError(`${app.name}.${key} must be ≥ 0`);
      }
      if (app.executablePath !== undefined && !isAbsolute(app.executablePath)) {
        throw new RangeError(`${app.name}.executablePath must be absolute`);
      }
      const known = this.apps.get(app.name);
      if (known !== undefined && known !== app) throw new RangeError(`app '${app.name}' is defined twice`);
      this.apps.set(app.name, Object.freeze({ ...app }));
    }
    for (const server of definition.servers ?? []) {
      const permissions = server.permissions ?? 'user';
      if (!['user', 'group', 'unrestricted'].includes(permissions)) {
        throw new RangeError(`${server.name}.permissions must be user, group or unrestricted`);
      }
      for (const client of server.acceptedClients ?? []) {
        if (!this.apps.has(client)) throw new RangeError(`${server.name} accepts unknown app '${client}'`);
      }
      const runDirectory = server.runDirectory ?? defaultRunDirectory({ uid: server.uid, permissions });
      if (!isAbsolute(runDirectory)) throw new RangeError(`${server.name}.runDirectory must be absolute`);
      const socketPath = join(runDirectory, `${server.name}.sock`);
      if (Buffer.byteLength(socketPath) > 107) {
        throw new RangeError(`socket path ${socketPath} is longer than a Unix socket allows (107 bytes)`);
      }
      this.servers.set(
        server.name,
        Object.freeze({ ...server, acceptedClients: [...server.acceptedClients], permissions, runDirectory }),
      );
    }
  }

  /** The app named `name`; throws RangeError when unknown. */
  app(name: string): AppDefinition {
    const app = this.apps.get(name);
    if (app === undefined) throw new RangeError(`unknown app '${name}'`);
    return app;
  }

  /** The server app named `name`; throws RangeError when unknown or not a server. */
  server(name: string): Required<Pick<ServerAppDefinition, 'permissions' | 'runDirectory'>> & ServerAppDefinition {
    const server = this.servers.get(name);
    if (server === undefined) throw new RangeError(`unknown server app '${name}'`);
    return server;
  }

  /** Path of the server app's listening socket. */
  socketPath(serverApp: string): string {
    const s = this.server(serverApp);
    return join(s.runDirectory, `${s.name}.sock`);
  }
}
