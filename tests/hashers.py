from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2 with few iterations: fast in tests, and its hashes still verify in the live processes
    (web, worker) that tests start with the real settings, since the iteration count travels in the hash."""

    iterations = 1_000
