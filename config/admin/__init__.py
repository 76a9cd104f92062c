"""Flowbill's admin site: the default `admin.site` is a `FlowbillAdminSite` (see `apps`),
whose index is the reseller dashboard; `charts` and `formatting` serve admin pages."""
