"""Issue 19: the Debian package. CPack builds it from this build (configured with
-DCMAKE_INSTALL_PREFIX=/usr, as CI's is); its dependencies come from dpkg-shlibdeps (plus the libraries
luaflowd dlopens); lintian reports no error; its installed size stays within 5 MiB; and `dpkg -i` into
a clean Debian 12 root made here with mmdebstrap, then `luaflowd --check` and `luaflowctl validate`
there, work."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import LUAFLOWD, main, missing_peer  # noqa: E402

BUILD = os.path.dirname(LUAFLOWD)
MIRROR = "http://deb.debian.org/debian"
MAX_INSTALLED_KIB = 5 * 1024


def prefix_of_build():
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        return re.search(r"^CMAKE_INSTALL_PREFIX:PATH=(.*)$", f.read(), re.M).group(1)


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)


# In the clean root only its own environment: not this test's LUAFLOWD, which names the build's luaflowd.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def in_root(root, *args):
    return run("chroot", root, *args, env=CLEAN_ENV)


class DebianPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="luaflow-deb-")
        cls.deb = None
        if prefix_of_build() != "/usr":
            return
        out = run("cpack", "-G", "DEB", "-B", cls.dir, "--config", os.path.join(BUILD, "CPackConfig.cmake"))
        assert out.returncode == 0, out.stdout + out.stderr
        [cls.deb] = [os.path.join(cls.dir, f) for f in os.listdir(cls.dir) if f.endswith(".deb")]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        if not self.deb:
            missing_peer("a package needs a build configured with -DCMAKE_INSTALL_PREFIX=/usr "
                         f"(this one has {prefix_of_build()}; scripts/dev.sh deb makes one)")

    def field(self, name):
        return run("dpkg-deb", "-f", self.deb, name).stdout.strip()

    def depends(self):
        """The package names of Depends (the first of each alternative), without versions."""
        return [re.split(r"[ (|]", d.strip())[0] for d in self.field("Depends").split(",")]

    def test_control_fields_and_dependencies(self):
        self.assertEqual(self.field("Package"), "luaflow")
        self.assertRegex(self.field("Architecture"), r"^[a-z0-9]+$")
        deps = self.depends()
        # dpkg-shlibdeps found what the programs and the module link (versions included), and the
        # libraries luaflowd dlopens are named by hand.
        for lib in ("libc6", "libluajit-5.1-2", "libuv1", "libsqlite3-0", "libical3", "libsystemd0"):
            self.assertIn(lib, deps)
        self.assertRegex(self.field("Depends"), r"libuv1 \(>= [0-9.]+\)")
        self.assertIn("libcurl4", self.field("Recommends"))
        # The config is a conffile: an upgrade never overwrites a user's edits.
        control = os.path.join(self.dir, "control")
        self.assertEqual(run("dpkg-deb", "-e", self.deb, control).returncode, 0)
        with open(os.path.join(control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/luaflow/luaflowd.lua"])

    def test_lintian_reports_no_error(self):
        if not shutil.which("lintian"):
            missing_peer("lintian is not installed")
        out = run("lintian", "--fail-on", "error", "--no-tag-display-limit", self.deb)
        print(out.stdout + out.stderr, flush=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertNotRegex(out.stdout, r"(?m)^E: ")

    def test_installed_size(self):
        size = int(self.field("Installed-Size"))  # KiB
        print(f"installed size: {size} KiB", flush=True)
        self.assertLessEqual(size, MAX_INSTALLED_KIB)

    def test_installs_into_a_clean_debian_root(self):
        if os.geteuid() != 0 or not shutil.which("mmdebstrap"):
            missing_peer("a clean root needs root and mmdebstrap")
        root = os.path.join(self.dir, "root")
        # A minimal Debian 12 with only the package's dependencies: dpkg -i must find them all there.
        out = run("mmdebstrap", "--variant=minbase", "--mode=root", "--include=" + ",".join(self.depends()),
                  "bookworm", root, MIRROR, timeout=900)
        if out.returncode != 0:
            missing_peer(f"mmdebstrap could not make a Debian 12 root from {MIRROR}: {out.stderr[-500:]}")
        shutil.copy(self.deb, os.path.join(root, "tmp", "luaflow.deb"))
        out = in_root(root, "dpkg", "-i", "/tmp/luaflow.deb")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for path in ("/usr/sbin/luaflowd", "/usr/bin/luaflowctl", "/usr/lib/systemd/system/luaflowd.service",
                     "/etc/luaflow/luaflowd.lua", "/usr/share/doc/luaflow/copyright"):
            self.assertTrue(os.path.exists(os.path.join(root, path.lstrip("/"))), path)
        examples = "/usr/share/luaflow/examples/workflows"
        out = in_root(root, "luaflowd", "--check", "-c", "/etc/luaflow/luaflowd.lua", "-w", examples)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        out = in_root(root, "luaflowctl", "validate", examples + "/hello.lua")
        self.assertEqual((out.returncode, out.stdout), (0, "ok\n"), out.stderr)
        # Its HTTP module loads there: the one library luaflowd finds at run time by path.
        module = in_root(root, "sh", "-c", "ls /usr/lib/*/luaflow/luaflow-http.so").stdout.strip()
        out = in_root(root, "ldd", module)
        self.assertNotIn("not found", out.stdout)
        out = in_root(root, "dpkg", "--purge", "luaflow")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertFalse(os.path.exists(os.path.join(root, "usr/sbin/luaflowd")))


if __name__ == "__main__":
    main()
