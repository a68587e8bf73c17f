"""django-constance's own test suite on hotconfig's backend, in a process of its own.

``tests/integrations/django/test_constance_suite.py`` fetches django-constance's sdist, puts its
``tests/`` package first on the path (it is named ``tests`` too, so this directory is not under
ours) and runs ``python -m django test`` with :mod:`hotconfig_suite.settings`: constance's own
test settings, with ``CONSTANCE_BACKEND`` pointed at ``hotconfig_django.constance.Backend`` on
a real server. :mod:`hotconfig_suite.storage` adds constance's generic backend tests
(``StorageTestsMixin``), and :mod:`hotconfig_suite.runner` writes what passed and failed as JSON.
"""
