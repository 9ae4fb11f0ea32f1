// Keyless signing for the tests with the sigstore project's own tooling:
// npm's @sigstore/sign (FulcioSigner, RekorWitness and the bundle
// builders) while @sigstore/mock answers for Fulcio and Rekor in process
// (nock), under an ephemeral CA and log key the test then trusts.
//
// Usage: node sigstore-sign.mjs <request.json>, request:
//   {modules, subject, issuer, ca_clock_ms?, jobs: [{kind: "message"|"dsse",
//    payload_b64, payload_type?, subject?}]}
// (a job's own `subject` overrides the request's signer).
// Prints {root_pem, log_key_pem, bundles: [bundle JSON per job]}.
// `ca_clock_ms` backdates the CA's clock: its certificates are then valid
// for ten minutes from that time (an expired certificate when old).
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const req = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const require = createRequire(join(req.modules, 'noop.js'));
const nockModule = createRequire(require.resolve('@sigstore/mock'))('nock');
const nock = nockModule.default ?? nockModule;
const mock = require('@sigstore/mock');
const sign = require('@sigstore/sign');
const { bundleToJSON } = createRequire(require.resolve('@sigstore/sign'))('@sigstore/bundle');

const FULCIO = 'https://fulcio.test.invalid';
const REKOR = 'https://rekor.test.invalid';

const caKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const logKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ctlog = await mock.initializeCTLog(caKeys);
const clock = req.ca_clock_ms ? new Date(req.ca_clock_ms) : undefined;
const ca = await mock.initializeCA(caKeys, ctlog, clock);
const tlog = await mock.initializeTLog(REKOR, logKeys);

// Route one handler (path + async fn(body)) through nock, persistently.
function serve(base, handler) {
  nock(base).persist().post(handler.path).reply(async (_uri, body) => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    const { statusCode, response, contentType } = await handler.fn(text);
    return [statusCode, response, { 'Content-Type': contentType || 'text/plain' }];
  });
}
serve(FULCIO, mock.fulcioHandler(ca));
serve(REKOR, mock.rekorHandler(tlog));

// The mock CA reads the token without checking it: an unsigned JWT.
const b64url = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = (sub) => `${b64url({ alg: 'none' })}.${b64url({ iss: req.issuer, sub, aud: 'sigstore' })}.`;

const bundles = [];
for (const job of req.jobs) {
  const identityProvider = { getToken: async () => token(job.subject || req.subject) };
  const signer = new sign.FulcioSigner({ identityProvider, fulcioBaseURL: FULCIO });
  const witnesses = [new sign.RekorWitness({ rekorBaseURL: REKOR, entryType: 'dsse' })];
  const builder = job.kind === 'dsse'
    ? new sign.DSSEBundleBuilder({ signer, witnesses })
    : new sign.MessageSignatureBundleBuilder({ signer, witnesses });
  const bundle = await builder.create({
    data: Buffer.from(job.payload_b64, 'base64'),
    type: job.payload_type,
  });
  bundles.push(bundleToJSON(bundle));
}

const pem = (label, der) =>
  `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;
process.stdout.write(JSON.stringify({
  root_pem: pem('CERTIFICATE', ca.rootCertificate),
  log_key_pem: logKeys.publicKey.export({ type: 'spki', format: 'pem' }),
  bundles,
}));
