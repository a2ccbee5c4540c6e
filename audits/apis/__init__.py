"""The audits REST API: one small APIView per operation (URL → APIView → service or selector).

- ``runs``: audit runs (list, detail, on demand, external), the internal audit report download,
  datasheet verification and risk acceptance;
- ``releases``: release, list, detail, download and revoke;
- ``reports``: the compliance report.
"""
