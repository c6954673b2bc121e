"""Authlib's private_key_jwt against the demo server: a token by client_credentials, then
its introspection and revocation, each request authenticated by a fresh assertion whose
`aud` is the token endpoint's URL (Authlib's default, as OpenID Connect asks). tests/fapi.rs
runs it and checks the JSON it prints.

Environment: ISSUER, CLIENT_ID, KEY_FILE (PKCS#8 PEM), KID, CA_FILE (the demo's certificate).
"""

import json
import os
import time

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

issuer = os.environ["ISSUER"]
token_url = f"{issuer}/oauth2/token"
with open(os.environ["KEY_FILE"]) as f:
    key = f.read()



class ShortLivedPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's assertions live an hour by default; the server accepts five minutes."""

    def sign(self, auth, token_endpoint):
        self.claims = {"exp": int(time.time()) + 60}
        return super().sign(auth, token_endpoint)


auth = ShortLivedPrivateKeyJWT(token_url, headers={"kid": os.environ["KID"]}, alg="ES256")
# Authlib revokes with client_secret_basic unless told otherwise.
session = OAuth2Session(
    os.environ["CLIENT_ID"],
    key,
    token_endpoint_auth_method=auth,
    revocation_endpoint_auth_method=auth,
)
# The proxy settings of the environment are not the loopback's.
session.trust_env = False
session.verify = os.environ["CA_FILE"]

seen = {}
token = session.fetch_token(token_url, grant_type="client_credentials")
seen["token_type"] = token["token_type"]
access = token["access_token"]
seen["introspected"] = session.introspect_token(
    f"{issuer}/oauth2/introspect", token=access
).json()
seen["revoked"] = session.revoke_token(f"{issuer}/oauth2/revoke", token=access).status_code
seen["after_revocation"] = session.introspect_token(
    f"{issuer}/oauth2/introspect", token=access
).json()
userinfo = requests.Session()
userinfo.trust_env = False
seen["userinfo_after_revocation"] = userinfo.get(
    f"{issuer}/userinfo",
    headers={"Authorization": f"Bearer {access}"},
    verify=os.environ["CA_FILE"],
).status_code
print(json.dumps(seen))
