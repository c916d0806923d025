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

  package = pname: version: packageWith pname version [ pname ];

  # A package and the programs its bin/ holds in the real nixpkgs (the flake check holds the dev
  # shell's programs to the tools xtask looks for).
  packageWith =
    pname: version: programs:
    stubDerivation "${pname}-${version}" {
      inherit pname version;
      meta.mainProgram = builtins.head programs;
      passthru.stubPrograms = programs;
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
  stubs = { inherit stubDerivation package packageWith; };

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

  # Dev shell (nix/devshell.nix): each with the programs xtask looks for in it.
  cargo-nextest = packageWith "cargo-nextest" "0.9.100" [ "cargo-nextest" ];
  sqlx-cli = packageWith "sqlx-cli" "0.8.6" [ "sqlx" "cargo-sqlx" ];
  dapr-cli = packageWith "dapr-cli" "1.16.0" [ "dapr" ];
  redis = packageWith "redis" "8.2.1" [ "redis-server" "redis-cli" ];
  prometheus = packageWith "prometheus" "3.5.0" [ "prometheus" "promtool" ];
  kubectl = package "kubectl" "1.34.0";
  kubernetes-helm = packageWith "kubernetes-helm" "3.19.0" [ "helm" ];
  skopeo = package "skopeo" "1.20.0";
  umoci = package "umoci" "0.5.0";
  go_1_26 = packageWith "go" "1.26.0" [ "go" "gofmt" ];
  nodejs = packageWith "nodejs" "22.19.0" [ "node" "npm" "npx" ];
  python3 = packageWith "python3" "3.13.7" [ "python3" "python" ];
  jdk17_headless = packageWith "openjdk-headless" "17.0.16" [ "java" ];
  maven = packageWith "maven" "3.9.11" [ "mvn" ];
  rabbitmq-server = packageWith "rabbitmq-server" "4.1.4" [ "rabbitmq-server" "rabbitmqctl" ];
  erlang = packageWith "erlang" "27.3.4" [ "erl" "epmd" ];
  containerd = packageWith "containerd" "2.1.4" [ "containerd" "ctr" ];
  runc = package "runc" "1.3.1";
  conntrack-tools = packageWith "conntrack-tools" "1.4.8" [ "conntrack" ];
  cni-plugins = packageWith "cni-plugins" "1.8.0" [ "bridge" "host-local" "loopback" "portmap" ];
  iptables = packageWith "iptables" "1.8.11" [ "iptables" "iptables-save" "iptables-restore" ];
  iproute2 = packageWith "iproute2" "6.16.0" [ "ip" ];
  util-linux = packageWith "util-linux" "2.41.1" [ "unshare" "nsenter" "mount" ];
  git = package "git" "2.51.0";
  nix = packageWith "nix" "2.31.1" [ "nix" "nix-instantiate" "nix-build" ];
  glibc = stdenv.cc.libc // {
    bin = packageWith "glibc-bin" "2.42" [ "ldd" ];
  };
}
