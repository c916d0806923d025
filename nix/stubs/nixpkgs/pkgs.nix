# `legacyPackages.x86_64-linux` of the stub nixpkgs: stand-in derivations for the packages the
# flake names (the real nixpkgs attribute names), and the builders it calls. Every derivation here
# is a real `derivation` (so `nix flake check --no-build` can instantiate it) whose builder fails.
{ lib, system }:
let
  # The attributes given to `derivation`: strings only, so referenced store paths (a `src`, the
  # `${...}` in a build script) become inputs of the stub, as they would of the real derivation.
  stubDerivation =
    name: attrs:
    let
      drv = derivation (
        {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "echo 'nix/stubs: a stand-in derivation; evaluate only, build with the real inputs' >&2; exit 1"
          ];
        }
        // lib.filterAttrs (n: v: builtins.isString v || builtins.isPath v || (builtins.isAttrs v && v ? outPath)) (
          builtins.removeAttrs attrs [
            "name"
            "passthru"
            "meta"
          ]
        )
      );
    in
    # Like mkDerivation: the arguments and passthru stay readable on the result.
    attrs // (attrs.passthru or { }) // drv;

  package =
    pname: version:
    stubDerivation "${pname}-${version}" {
      inherit pname version;
      meta.mainProgram = pname;
    };

  runCommand =
    name: env: buildCommand:
    stubDerivation name (env // { inherit buildCommand; });

  stdenv = {
    cc = {
      libc = package "glibc" "2.42";
      # gcc's `lib` output: libgcc_s and libstdc++.
      cc.lib = package "gcc-lib" "15";
    };
  };

  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      ...
    }@args:
    stubDerivation name (
      args
      // {
        packagesIn = toString packages;
        inputsFromIn = toString inputsFrom;
      }
    );
in
{
  inherit
    lib
    stdenv
    runCommand
    mkShell
    ;
  # Exposed for the crane and nix2container stubs.
  stubs = { inherit stubDerivation package; };

  # The toolchain crane.mkLib takes from nixpkgs. rustc's version is checked against the
  # workspace's rust-version by nix/rust.nix.
  rustc = package "rustc" "1.94.0";
  cargo = package "cargo" "1.94.0";
  clippy = package "clippy" "1.94.0";
  rustfmt = package "rustfmt" "1.94.0";

  # Checks: the database for #[sqlx::test] and its setup hook, `kill` for email-delivery's tests.
  postgresql = package "postgresql" "17.6";
  postgresqlTestHook = package "postgresql-test-hook" "0";
  procps = package "procps" "4.0.4";

  # Dev shell.
  cargo-nextest = package "cargo-nextest" "0.9.100";
  sqlx-cli = package "sqlx-cli" "0.8.6";
  dapr-cli = package "dapr-cli" "1.16.0";
  redis = package "redis" "8.2.1";
  prometheus = package "prometheus" "3.5.0";
  kubectl = package "kubectl" "1.34.0";
  kubernetes-helm = package "kubernetes-helm" "3.19.0";
  skopeo = package "skopeo" "1.20.0";
}
