# Offline stand-in for nixpkgs (see ../README.md): `lib` and `legacyPackages.x86_64-linux` with
# just the attributes todo-dapr's flake uses. Evaluates; builds nothing.
{
  description = "Stub nixpkgs for evaluating todo-dapr's flake offline";

  outputs =
    { self }:
    let
      system = "x86_64-linux";
      lib = import ./lib.nix;
    in
    {
      inherit lib;
      legacyPackages.${system} = import ./pkgs.nix { inherit lib system; };
    };
}
