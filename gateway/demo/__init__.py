"""The demo upstreams: a sample CRM (REST/JSON) and ERP (SOAP/XML) with deterministic
Chinese company data, and a demo-only identity provider. Used by ``wardgate demo``, the
end-to-end tests and the benchmarks.

    data.py       customers, orders, products, invoices (seeded, built once, cached)
    crm.py        make_crm_app()          (+ crm_admin.py, diagnostics.py, customers.py)
    erp.py        make_erp_app()          (+ soap.py, erp.wsdl)
    idp.py        DemoIdP, make_idp_app()
    recorder.py   Recorder: what each upstream received
    serving.py    start_app(): serve an app on a pre-bound loopback socket
    upstreams.py  start_demo_upstreams(): all three at once
"""
