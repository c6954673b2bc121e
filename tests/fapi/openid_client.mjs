// openid-client 6 against the demo server, as a FAPI 2.0 client would use it: discovery
// from the RFC 8414 metadata, private_key_jwt at every endpoint, DPoP-bound tokens.
// tests/fapi.rs runs it and checks what it prints: one JSON object of what each step saw.
//
// Environment: ISSUER (the demo's https URL), CLIENT_ID, KEY_FILE (the client's PKCS#8 PEM),
// KID, NODE_EXTRA_CA_CERTS (the demo's certificate).
import { readFileSync } from 'node:fs';
import * as client from 'openid-client';

const issuer = new URL(process.env.ISSUER);
const pem = readFileSync(process.env.KEY_FILE, 'utf8');
const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
const key = await crypto.subtle.importKey(
  'pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'],
);

const config = await client.discovery(
  issuer,
  process.env.CLIENT_ID,
  undefined,
  client.PrivateKeyJwt({ key, kid: process.env.KID }),
  { algorithm: 'oauth2' },
);
const userinfo = new URL('/userinfo', issuer);
const seen = { metadata: config.serverMetadata() };

async function status(promise) {
  try {
    const response = await promise;
    return { status: response.status, body: await response.json().catch(() => null) };
  } catch (err) {
    return { status: err.status ?? err.response?.status ?? null, error: err.code ?? String(err) };
  }
}

// A bearer token, by private_key_jwt; introspected, used, revoked, refused.
{
  const tokens = await client.clientCredentialsGrant(config);
  const token = tokens.access_token;
  seen.bearer = {
    token_type: tokens.token_type,
    introspected: await client.tokenIntrospection(config, token),
    userinfo: await status(client.fetchProtectedResource(config, token, userinfo, 'GET')),
  };
  await client.tokenRevocation(config, token);
  seen.bearer.after_revocation = {
    introspected: await client.tokenIntrospection(config, token),
    userinfo: await status(client.fetchProtectedResource(config, token, userinfo, 'GET')),
  };
}

// A DPoP-bound token: usable only with a proof of its key.
if (process.env.DPOP === '1') {
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  const tokens = await client.clientCredentialsGrant(config, {}, { DPoP });
  const token = tokens.access_token;
  seen.dpop = {
    token_type: tokens.token_type,
    introspected: await client.tokenIntrospection(config, token),
    with_proof: await status(
      client.fetchProtectedResource(config, token, userinfo, 'GET', undefined, undefined, { DPoP }),
    ),
    without_proof: await status(client.fetchProtectedResource(config, token, userinfo, 'GET')),
    other_key: await status(
      client.fetchProtectedResource(config, token, userinfo, 'GET', undefined, undefined, {
        DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')),
      }),
    ),
  };
  await client.tokenRevocation(config, token);
  seen.dpop.after_revocation = await status(
    client.fetchProtectedResource(config, token, userinfo, 'GET', undefined, undefined, { DPoP }),
  );
}

console.log(JSON.stringify(seen));
