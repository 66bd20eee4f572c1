"""Data package: the Admin GraphQL SDL (a package so that wheels ship the ``.graphql`` file)."""
