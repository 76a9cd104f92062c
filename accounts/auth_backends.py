"""Login lockout: django-axes in front of Django's ModelBackend.

Every login over HTTP (the admin's login form, the DRF browsable login) passes the request,
and axes counts failures per username and client address: after `AXES_FAILURE_LIMIT`
failures within `AXES_COOLOFF_TIME` that pair is refused (429) until the cool-off ends,
even with the right password; a success resets the count. A login with no request (a
shell, a management command, the test client's `login()`) has no address to lock out and
is not reachable from the network, so it is left to the next backend.
"""

from axes.backends import AxesStandaloneBackend


class LoginLockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
