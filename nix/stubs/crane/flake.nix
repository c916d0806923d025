# Offline stand-in for crane (see ../README.md): `mkLib pkgs`, a top-level output as in crane, with
# the functions the flake calls. Each returns a stand-in derivation carrying its arguments, like
# crane's mkCargoDerivation.
{
  description = "Stub crane for evaluating todo-dapr's flake offline";

  outputs =
    { self }:
    {
      mkLib =
        pkgs:
        let
          inherit (pkgs) lib;
          inherit (pkgs.stubs) stubDerivation;

          require =
            fn: names: args:
            let
              missing = builtins.filter (n: !(args ? ${n})) names;
            in
            if missing == [ ] then
              args
            else
              throw "crane.${fn}: missing ${builtins.concatStringsSep ", " missing}";

          # crane names its derivations "<pname>-<suffix>-<version>".
          cargoDerivation =
            fn: suffix: required: args:
            let
              checked = require fn ([ "src" ] ++ required) args;
            in
            stubDerivation "${checked.pname or "crate"}${suffix}-${checked.version or "0.0.0"}" checked;

          # Crane accepts a missing cargoArtifacts and then compiles the dependencies again inside
          # the derivation; the flake's rule is that they are compiled once, so the stub refuses.
          withArtifacts =
            fn: suffix: args:
            if (args.cargoArtifacts or null) == null then
              throw "crane.${fn}: pass cargoArtifacts (the shared buildDepsOnly) so dependencies are not compiled again"
            else
              cargoDerivation fn suffix [ ] args;
        in
        {
          buildDepsOnly =
            args:
            if args ? cargoArtifacts then
              throw "crane.buildDepsOnly: unexpected cargoArtifacts"
            else
              cargoDerivation "buildDepsOnly" "-deps" [ ] args;

          buildPackage = args: withArtifacts "buildPackage" "" (require "buildPackage" [ "pname" ] args);
          cargoClippy = withArtifacts "cargoClippy" "-clippy";
          cargoTest = withArtifacts "cargoTest" "-test";
          cargoNextest = withArtifacts "cargoNextest" "-nextest";
          cargoFmt = cargoDerivation "cargoFmt" "-fmt" [ ];

          vendorCargoDeps =
            args:
            let
              lock =
                args.cargoLock or (
                  if args ? src then args.src + "/Cargo.lock" else throw "crane.vendorCargoDeps: no cargoLock or src"
                );
            in
            if builtins.pathExists lock then
              stubDerivation "vendor-cargo-deps" { cargoLock = builtins.readFile lock; }
            else
              throw "crane.vendorCargoDeps: ${toString lock} does not exist";

          # Rust sources, every Cargo.toml / Cargo.lock and other TOML (tool configuration).
          fileset.commonCargoSources =
            path: lib.fileset.fileFilter (f: f.hasExt "rs" || f.hasExt "toml" || f.name == "Cargo.lock") path;

          # crane's devShell is mkShell plus the toolchain it was made with.
          devShell =
            {
              checks ? { },
              packages ? [ ],
              inputsFrom ? [ ],
              ...
            }@args:
            pkgs.mkShell (
              builtins.removeAttrs args [ "checks" ]
              // {
                inputsFrom = builtins.attrValues checks ++ inputsFrom;
                packages = [
                  pkgs.rustc
                  pkgs.cargo
                  pkgs.clippy
                  pkgs.rustfmt
                ]
                ++ packages;
              }
            );
        };
    };
}
