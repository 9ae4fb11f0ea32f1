// A real OpenID provider for the tests: npm's oidc-provider (certified
// OpenID Connect), on loopback. Usage: node oidc-provider.mjs <config.json>
// with {port, generation, modules, clients: [...], users_file}. Keys come
// from `generation`: restarting with the next one rotates them. Users and
// their groups are read from users_file at each sign-in, so a test can
// take a group away. Prints "ready" when listening.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { default: Provider } = await import(
  pathToFileURL(join(config.modules, 'oidc-provider', 'lib', 'index.js')).href
);

const issuer = `http://127.0.0.1:${config.port}`;
const kid = (kind) => `${kind}-${config.generation}-${createHash('sha256').update(String(process.pid)).digest('hex').slice(0, 6)}`;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const users = () => JSON.parse(readFileSync(config.users_file, 'utf8'));

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: { keys: [{ ...rsa, kid: kid('rsa'), use: 'sig', alg: 'RS256' }, { ...ec, kid: kid('ec'), use: 'sig', alg: 'ES256' }] },
  cookies: { keys: ['berth-test-cookie-key'] },
  pkce: { required: () => true, methods: ['S256'] },
  conformIdTokenClaims: false,
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups', 'realm_access'],
  },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  extraClientMetadata: { properties: ['repository', 'ref'] },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:berth',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'push',
        audience: 'berth',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 300,
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // CI-style claims of a client_credentials token (as GitHub's or
  // GitLab's job tokens carry the repository and ref).
  extraTokenClaims: (ctx, token) =>
    token.kind === 'ClientCredentials'
      ? { repository: ctx.oidc.client.repository, ref: ctx.oidc.client.ref }
      : undefined,
  // First-party client: no consent screen.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  findAccount: (ctx, id) => {
    const user = users()[id];
    if (!user) return undefined;
    return {
      accountId: id,
      claims: () => ({
        sub: id,
        preferred_username: user.username ?? id,
        name: id,
        email: `${id}@example.com`,
        groups: user.groups ?? [],
        realm_access: { roles: user.roles ?? [] },
      }),
    };
  },
  ttl: { IdToken: 300, AccessToken: 300, Session: 3600, Interaction: 600, Grant: 3600 },
});
provider.proxy = false;
provider.listen(config.port, '127.0.0.1', () => console.log('ready'));
