"""A stock SOAP client (zeep) against the demo's OAuthAdminService, from its WSDL alone.

    zeep_client.py WSDL_URL CA_FILE USER PASSWORD PORT OPERATION [APP ...]

PORT is 11 or 12 (the WSDL's SOAP 1.1 or 1.2 port); OPERATION is `list`, `revoke` (WSO2's
spelling) or `revoke-spelled`. Prints one JSON line: {"apps": [...]} for a list,
{"error": ..., "errorCode": ..., "errorMsg": ...} for a revocation, or {"fault": ...} when
the service answered a SOAP fault.
"""

import json
import sys

import requests
from zeep import Client
from zeep.exceptions import Fault, TransportError
from zeep.transports import Transport


def main():
    wsdl, ca_file, user, password, port, operation, *apps = sys.argv[1:]
    session = requests.Session()
    # Only the demo's certificate, whatever REQUESTS_CA_BUNDLE says; no proxy for loopback.
    session.trust_env = False
    session.verify = ca_file
    session.auth = (user, password)
    # The WSDL itself is public; the session's credentials go with every call.
    client = Client(wsdl, transport=Transport(session=session))
    service = client.bind(
        "OAuthAdminService", "OAuthAdminServiceHttpsSoap%sEndpoint" % port
    )
    try:
        if operation == "list":
            result = service.getAppsAuthorizedByUser()
            print(json.dumps({"apps": [
                {"applicationName": a.applicationName,
                 "oauthConsumerKey": a.oauthConsumerKey}
                for a in (result or [])
            ]}))
        else:
            call = {
                "revoke": service.revokeAuthzForAppsByResoureOwner,
                "revoke-spelled": service.revokeAuthzForAppsByResourceOwner,
            }[operation]
            result = call(revokeRequestDTO={"apps": apps, "authzUser": "ignored"})
            print(json.dumps({
                "error": result.error,
                "errorCode": result.errorCode,
                "errorMsg": result.errorMsg,
            }))
    except Fault as fault:
        print(json.dumps({"fault": fault.message, "code": fault.code}))
    except TransportError as error:
        print(json.dumps({"transport": error.status_code}))


if __name__ == "__main__":
    main()
