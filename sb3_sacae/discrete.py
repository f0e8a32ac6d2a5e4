"""
Discrete actions for SAC-AE: a categorical actor, a critic with one Q-value per action, and the exact expectations
over actions of discrete SAC (Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings",
https://arxiv.org/abs/1910.07207).

Both networks read the same :class:`~sb3_sacae.torch_layers.Encoder` latents as their continuous
counterparts, so the gradient routing of the design page is unchanged: the actor's encoder detaches the shared
trunk, the critic's encoder is trained by the critic and reconstruction losses.
"""

import math
from typing import cast

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.torch_layers import create_mlp
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn
from torch.nn import functional as F

from sb3_sacae.network_loading import AlgorithmPart, RefusePickledLoad
from sb3_sacae.torch_layers import Encoder

# Christodoulou 2019 sets the target entropy to 0.98 of the maximum entropy log |A|
DEFAULT_TARGET_ENTROPY_FRACTION = 0.98


class AllowDiscreteActions(AlgorithmPart):
    """
    Lets SB3's ``SAC.__init__`` run unchanged for Discrete action spaces too.

    ``SAC.__init__`` passes ``supported_action_spaces=(spaces.Box,)`` to its parent; placed between ``SAC`` and
    ``OffPolicyAlgorithm`` in the method resolution order (``class SACAE(..., SAC, AllowDiscreteActions)``), this
    class adds ``spaces.Discrete`` to that tuple, so every attribute SB3's SAC sets is set by SB3's own code.
    """

    def __init__(self, *args, **kwargs) -> None:
        supported = kwargs.get("supported_action_spaces")
        if supported is not None and spaces.Box in supported:
            kwargs["supported_action_spaces"] = (*supported, spaces.Discrete)
        super().__init__(*args, **kwargs)


def discrete_target_entropy(n_actions: int, target_entropy: str) -> float:
    """
    ``"auto"`` -> ``0.98 * log(n_actions)`` (Christodoulou 2019); ``"auto_<fraction>"`` -> ``fraction * log(n_actions)``.

    :param n_actions: number of actions ``|A|``
    :param target_entropy: "auto" or "auto_<fraction>" with a fraction in (0, 1]
    """
    fraction = DEFAULT_TARGET_ENTROPY_FRACTION
    if target_entropy != "auto":
        prefix, _, value = target_entropy.partition("_")
        try:
            fraction = float(value) if prefix == "auto" else math.nan
        except ValueError:
            fraction = math.nan
        if not 0.0 < fraction <= 1.0:
            raise ValueError(
                f"target_entropy={target_entropy!r} is not understood for discrete actions: use 'auto' "
                f"({DEFAULT_TARGET_ENTROPY_FRACTION} * log |A|), 'auto_<fraction>' with a fraction in (0, 1] "
                "(e.g. 'auto_0.5'), or a number in nats"
            )
    return fraction * math.log(n_actions)


class CategoricalActor(RefusePickledLoad, BasePolicy):
    """
    Categorical policy pi(a|s) over ``Discrete(n)`` actions: features -> MLP -> one logit per action.

    :param observation_space: Observation space
    :param action_space: Discrete action space
    :param net_arch: hidden layers of the MLP (paper: [1024, 1024])
    :param features_extractor: the actor's :class:`Encoder` (``detach_trunk=True``)
    :param features_dim: size of the encoder latent
    :param activation_fn: activation of the MLP
    :param normalize_images: SB3's own division by 255 (False: the conv trunk divides)
    """

    action_space: spaces.Discrete
    features_extractor: Encoder

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        net_arch: list[int],
        features_extractor: Encoder,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.latent_pi = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
        self.action_logits = nn.Linear(net_arch[-1] if net_arch else features_dim, int(action_space.n))

    def log_probs_from_features(self, features: th.Tensor) -> th.Tensor:
        """log pi(.|s) for every action, shape (batch, n), in float32 (log-softmax of the logits)."""
        return F.log_softmax(self.action_logits(self.latent_pi(features)).float(), dim=1)

    def soft_value(
        self, features: th.Tensor, critic: BaseModel, critic_latent: th.Tensor, ent_coef: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        Exact soft state value over actions (arXiv:1910.07207, eq. 10): sum_a pi(a|s) [min_i Q_i(s, a) - alpha log
        pi(a|s)], the counterpart of :meth:`sb3_sacae.policies.SACAEActor.soft_value`.

        :return: the value and E_pi[log pi(a|s)] = -H(pi(.|s)), both of shape (batch, 1)
        """
        log_probs = self.log_probs_from_features(features)
        q_values = cast(DiscreteCritic, critic).q_values_from_features(critic_latent)
        return soft_state_value(log_probs, q_values, ent_coef), expected_log_prob(log_probs)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        log_probs = self.log_probs_from_features(self.extract_features(obs, self.features_extractor))
        if deterministic:
            return log_probs.argmax(dim=1)
        return th.distributions.Categorical(logits=log_probs).sample()

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self(observation, deterministic)


class DiscreteCritic(RefusePickledLoad, BaseModel):
    """
    Twin Q-networks that output Q(s, a) for every action at once (no action input), on the critic's latent.

    :param observation_space: Observation space
    :param action_space: Discrete action space
    :param net_arch: hidden layers of each Q-network (paper: [1024, 1024])
    :param features_extractor: the critic's :class:`Encoder` (trains the shared trunk)
    :param features_dim: size of the encoder latent
    :param activation_fn: activation of the MLPs
    :param normalize_images: SB3's own division by 255 (False: the conv trunk divides)
    :param n_critics: number of Q-networks (paper: 2)
    :param critic_layer_norm: insert LayerNorm between each hidden Linear and its activation
    """

    features_extractor: Encoder

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        net_arch: list[int],
        features_extractor: Encoder,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        critic_layer_norm: bool = False,
    ):
        super().__init__(
            observation_space, action_space, features_extractor=features_extractor, normalize_images=normalize_images
        )
        self.n_critics = n_critics
        self.critic_layer_norm = critic_layer_norm
        self.q_networks: list[nn.Module] = []
        for idx in range(n_critics):
            mlp = create_mlp(features_dim, int(action_space.n), net_arch, activation_fn)
            layers: list[nn.Module] = []
            for layer in mlp:
                layers.append(layer)
                if critic_layer_norm and isinstance(layer, nn.Linear) and layer is not mlp[-1]:
                    layers.append(nn.LayerNorm(layer.out_features))
            q_net = nn.Sequential(*layers)
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)

    def q_values_from_features(self, features: th.Tensor) -> th.Tensor:
        """Q-values of every head and every action, shape (batch, n_critics, n_actions)."""
        return th.stack([q_net(features) for q_net in self.q_networks], dim=1)

    def q_at_actions(self, features: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-values of every head at the given actions (replay buffers store them as (batch, 1)), shape (batch, n_critics)."""
        q_values = self.q_values_from_features(features)
        index = actions.long().reshape(-1, 1, 1).expand(-1, q_values.shape[1], 1)
        return q_values.gather(2, index).squeeze(2)

    def forward(self, obs: PyTorchObs) -> tuple[th.Tensor, ...]:
        q_values = self.q_values_from_features(self.extract_features(obs, self.features_extractor))
        return tuple(q_values.unbind(dim=1))


def soft_state_value(log_probs: th.Tensor, q_values: th.Tensor, ent_coef: th.Tensor) -> th.Tensor:
    """
    Exact soft value V(s) = sum_a pi(a|s) [min_i Q_i(s, a) - alpha log pi(a|s)], shape (batch, 1).

    :param log_probs: log pi(.|s), shape (batch, n_actions)
    :param q_values: Q-values of every head, shape (batch, n_critics, n_actions)
    :param ent_coef: the entropy coefficient alpha
    """
    min_q = q_values.min(dim=1).values
    return (log_probs.exp() * (min_q - ent_coef * log_probs)).sum(dim=1, keepdim=True)


def expected_log_prob(log_probs: th.Tensor) -> th.Tensor:
    """Exact E_pi[log pi(a|s)] = -H(pi(.|s)), shape (batch, 1)."""
    return (log_probs.exp() * log_probs).sum(dim=1, keepdim=True)
