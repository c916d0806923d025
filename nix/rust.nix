# The Cargo workspace with crane: dependencies compiled once, one package per service (each from
# its own source set), and the lints and tests as checks that reuse the same compiled dependencies.
{
  pkgs,
  craneLib,
  root,
}:
let
  inherit (pkgs) lib;
  inherit (lib) fileset;

  workspace = lib.importTOML (root + "/Cargo.toml");
  inherit (workspace.workspace.package) version;
  members = workspace.workspace.members;

  # Fail at evaluation, with the reason, rather than deep in a build with an edition or
  # `rust-version` error: the pinned nixpkgs must carry a rustc at least as new as the workspace.
  rustVersion = workspace.workspace.package.rust-version;
  toolchainOk =
    lib.versionAtLeast pkgs.rustc.version rustVersion
    || throw "nixpkgs' rustc ${pkgs.rustc.version} is older than the workspace's rust-version ${rustVersion}: update the nixpkgs input (`nix flake update nixpkgs`)";

  # --- Source sets -------------------------------------------------------------------------------

  # Everything a workspace-wide cargo command reads: every crate's Rust sources and manifests
  # (crane's commonCargoSources also keeps rustfmt.toml, clippy.toml and .cargo/config.toml), and
  # the non-Rust files the crates read at compile or test time.
  workspaceSrc = fileset.toSource {
    inherit root;
    fileset = fileset.unions [
      (craneLib.fileset.commonCargoSources root)
      # `sqlx::migrate!("./migrations")` embeds the SQL when backend compiles.
      (root + "/services/backend/migrations")
      # `include_str!` of a test key in backend's auth tests.
      (root + "/services/backend/tests/fixtures")
      # contracts' tests compare the committed schemas and AsyncAPI document with the code.
      (root + "/services/contracts/schemas")
      (root + "/services/contracts/asyncapi.json")
      # The consumers' tests compare dapr/subscriptions/<app>.yaml with their subscription table.
      (root + "/dapr/subscriptions")
    ];
  };

  # Cargo parses every member's manifest even when it builds a single package, so each service's
  # source set carries all of them (and the lock file); see `stubOtherMembers` for the rest.
  workspaceManifests = fileset.unions (
    [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (fileset.maybeMissing (root + "/.cargo/config.toml"))
    ]
    ++ map (member: root + "/${member}/Cargo.toml") members
  );

  # Workspace dependency name -> directory, for the crates that live in this repository.
  localCrates = lib.mapAttrs (_: dep: dep.path) (
    lib.filterAttrs (_: dep: builtins.isAttrs dep && dep ? path) workspace.workspace.dependencies
  );

  # The in-repository crates `dir` depends on (normal and build dependencies: dev-dependencies
  # only matter to the tests, which build from workspaceSrc). Read from the manifests, so a new
  # path dependency joins the service's source set without an edit here.
  localDepsOf =
    dir:
    let
      manifest = lib.importTOML (root + "/${dir}/Cargo.toml");
      deps = (manifest.dependencies or { }) // (manifest.build-dependencies or { });
      direct = lib.filterAttrs (_: dep: builtins.isAttrs dep && dep ? path) deps;
    in
    if direct != { } then
      throw "${dir}/Cargo.toml: declare path dependencies (${toString (builtins.attrNames direct)}) in [workspace.dependencies], where nix/rust.nix finds them"
    else
      map (name: localCrates.${name}) (builtins.filter (name: localCrates ? ${name}) (builtins.attrNames deps));

  crateClosure =
    dir:
    map (entry: entry.key) (
      builtins.genericClosure {
        startSet = [ { key = dir; } ];
        operator = entry: map (dep: { key = dep; }) (localDepsOf entry.key);
      }
    );

  # A service's own source set: the workspace manifests, the Rust sources of the service and of
  # the in-repository crates it depends on, and its extra files. Editing another service, xtask
  # or the test harness does not rebuild it.
  serviceSrc =
    service:
    fileset.toSource {
      inherit root;
      fileset = fileset.unions (
        [ workspaceManifests ]
        ++ map (dir: craneLib.fileset.commonCargoSources (root + "/${dir}")) (crateClosure service.dir)
        ++ map (path: root + "/${path}") service.extraFiles
      );
    };

  # Members outside a service's source set are present as a Cargo.toml only, and Cargo rejects a
  # manifest without a target ("no targets specified in the manifest"). An empty library is
  # enough for it to load the workspace; these crates are never compiled by `--package <service>`.
  stubOtherMembers = ''
    for member in ${lib.escapeShellArgs members}; do
      if [ ! -e "$member/src/lib.rs" ] && [ ! -e "$member/src/main.rs" ]; then
        mkdir -p "$member/src"
        : > "$member/src/lib.rs"
      fi
    done
  '';

  # --- Builds ------------------------------------------------------------------------------------

  commonArgs = {
    pname = "todo-dapr";
    inherit version;
    src = workspaceSrc;
    strictDeps = true;
    # Cargo.lock is the only source of dependency versions, in every build and check.
    cargoExtraArgs = "--locked";
    # One vendor directory for all derivations, from the lock file alone: the compiled
    # dependencies stay valid for every source set (same paths, same fingerprints).
    cargoVendorDir = craneLib.vendorCargoDeps { cargoLock = root + "/Cargo.lock"; };
    # No system libraries: TLS is rustls + ring (ring's C parts need only stdenv's cc), PostgreSQL
    # is sqlx's pure-Rust driver, and no crate uses `sqlx::query!`, so the build needs neither a
    # database nor sqlx offline data (and has no network).
  };

  # Every dependency of the workspace, compiled once in release mode (crane replaces our own
  # sources with stubs, so this derivation changes only with Cargo.lock and the manifests). The
  # packages and all four checks start from it.
  cargoArtifacts = assert toolchainOk; craneLib.buildDepsOnly commonArgs;

  # The deployable services. The directory is the crate; the binary has the package's name.
  # extraFiles: non-Rust files read at compile time (tests' fixtures are not needed here).
  serviceSpecs = {
    backend = {
      dir = "services/backend";
      extraFiles = [ "services/backend/migrations" ];
    };
    notification = {
      dir = "services/notification";
      extraFiles = [ ];
    };
    email-delivery = {
      dir = "services/email-delivery";
      extraFiles = [ ];
    };
    recurring-task = {
      dir = "services/recurring-task";
      extraFiles = [ ];
    };
  };

  services = lib.mapAttrs (
    name: spec:
    craneLib.buildPackage (
      commonArgs
      // {
        inherit cargoArtifacts;
        pname = name;
        src = serviceSrc spec;
        postPatch = stubOtherMembers;
        cargoExtraArgs = "--locked --package ${name} --bin ${name}";
        # The tests run once for the whole workspace in checks.tests / checks.nextest, next to a
        # PostgreSQL; a package build stays a build.
        doCheck = false;
        meta.mainProgram = name;
      }
    )
  ) serviceSpecs;

  # --- Checks ------------------------------------------------------------------------------------

  # The suites the sandbox can run: everything except the todo-dapr-tests crate, whose suites start
  # daprd, the Dapr Scheduler, Redis and the service binaries (`cargo xtask test` runs those).
  # `#[sqlx::test]` needs a server it may create databases on: nixpkgs' postgresqlTestHook starts
  # one on a Unix socket in the build directory before the tests and stops it after.
  testArgs = commonArgs // {
    inherit cargoArtifacts;
    nativeCheckInputs = [
      pkgs.postgresql
      pkgs.postgresqlTestHook
      # email-delivery's shutdown test signals the service binary with `kill`, which is not in
      # stdenv's PATH.
      pkgs.procps
    ];
    # sqlx::test creates and drops one database per test.
    postgresqlTestUserOptions = "LOGIN SUPERUSER";
    # The hook exports PGHOST (the socket directory), PGUSER and PGDATABASE only once the server
    # is up; sqlx takes a socket directory as the `host` query parameter.
    postgresqlTestSetupPost = ''
      export DATABASE_URL="postgres://$PGUSER@localhost/$PGDATABASE?host=$PGHOST"
    '';
  };
  testSelection = "--workspace --exclude todo-dapr-tests";

  checks = {
    # Same lint gate as `cargo xtask test`: every target of every crate, warnings are errors.
    clippy = craneLib.cargoClippy (
      commonArgs
      // {
        inherit cargoArtifacts;
        cargoClippyExtraArgs = "--workspace --all-targets -- --deny warnings";
      }
    );

    # rustfmt.toml is in workspaceSrc. cargoFmt gets no commonArgs: `cargo fmt` rejects --locked.
    fmt = craneLib.cargoFmt {
      inherit version;
      pname = "todo-dapr";
      src = workspaceSrc;
    };

    # libtest, including the doctests nextest does not run.
    tests = craneLib.cargoTest (testArgs // { cargoTestExtraArgs = testSelection; });

    # The same tests, one process per test (the runner CI uses for isolation and timing).
    nextest = craneLib.cargoNextest (testArgs // { cargoNextestExtraArgs = testSelection; });
  };
in
{
  inherit
    craneLib
    cargoArtifacts
    checks
    services
    version
    ;
}
