#!/usr/bin/env bash
# Makes sure Python's zeep (the stock SOAP client tests/soap.rs drives) is importable:
# installs zeep 4.3.1 from PyPI when it is not.
set -euo pipefail
if python3 -c 'import zeep' >/dev/null 2>&1; then
  exit 0
fi
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore zeep==4.3.1
python3 -c 'import zeep; print("zeep", zeep.__version__)'
