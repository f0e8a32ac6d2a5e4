"""
SAC-AE policies: one trunk tied between actor and critic, a target critic, and a decoder. ``CnnPolicy`` reads
images (conv trunk, pixel decoder), ``MlpPolicy`` state vectors (MLP trunk, MLP decoder) and ``MultiInputPolicy``
Dict observations (a conv trunk per image key and an MLP trunk for the vector keys).
"""

import copy
import warnings
from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution, StateDependentNoiseDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.sac.policies import Actor
from torch import nn
from torch.distributions import Normal

from sb3_sacae.accel.flat_order import FlatOrdered, OptimizerStateOrder
from sb3_sacae.accel.onednn import use_onednn_linears
from sb3_sacae.discrete import CategoricalActor, DiscreteCritic
from sb3_sacae.network_loading import RefusePickledLoad
from sb3_sacae.torch_layers import (
    ConvTrunk,
    Decoder,
    Encoder,
    MlpDecoder,
    MlpTrunk,
    MultiDecoder,
    MultiTrunk,
    PixelDecoder,
    Trunk,
    weight_init,
)

# SAC-AE maps the actor's log-std with tanh into this range (SB3 clamps to [-20, 2] instead)
LOG_STD_MIN = -10.0
LOG_STD_MAX = 2.0

# Dict keys whose names say "simulator state": encoding them next to pixels turns a pixel benchmark into a state one
STATE_LIKE_KEY_PARTS = ("state", "position", "velocity", "qpos", "qvel", "observation", "orientation")


def check_image_space(observation_space: spaces.Space, normalize_images: bool, where: str = "CnnPolicy") -> spaces.Box:
    """Raise a clear error for observation spaces the pixel encoder cannot read; return the space."""
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
        raise ValueError(
            f"SACAE's CnnPolicy needs image observations (a 3D Box, e.g. (3, 84, 84) uint8), got {observation_space}: "
            "render the environment to pixels (see sb3_sacae.envs), use MlpPolicy for state vectors or "
            "MultiInputPolicy for Dict observations"
        )
    if not is_image_space_channels_first(observation_space):
        raise ValueError(
            f"SACAE's {where} expects channel-first images at the policy, got shape {observation_space.shape}: "
            "SB3 transposes uint8 [0, 255] images itself; move the channel axis of other images first, e.g. with "
            "gymnasium.wrappers.TransformObservation(env, lambda obs: np.moveaxis(obs, -1, 0), transposed_box_space)"
        )
    if observation_space.dtype != np.uint8 and normalize_images:
        low, high = float(np.min(observation_space.low)), float(np.max(observation_space.high))
        if low < 0.0 or high > 255.0:
            raise ValueError(
                f"SACAE got float images with bounds [{low}, {high}] while normalize_images=True divides by 255: "
                "pass policy_kwargs=dict(normalize_images=False) if the images are already normalised, "
                "or give the space bounds [0, 255]"
            )
        if high <= 1.0:
            raise ValueError(
                f"SACAE got float images with bounds [{low}, {high}], already normalised, while normalize_images=True "
                "would divide them by 255 a second time: pass policy_kwargs=dict(normalize_images=False)"
            )
    return observation_space


class UncheckedSquashedGaussian(SquashedDiagGaussianDistribution):
    """
    SB3's tanh-squashed diagonal Gaussian, its ``Normal`` built without torch's argument checks: the same samples and
    log-probabilities. Each check reads a tensor on the host (on a GPU, a wait for all queued work), three per actor
    forward; in the update the finite checks of :mod:`sb3_sacae.guards` catch what they would.
    """

    def proba_distribution(self, mean_actions: th.Tensor, log_std: th.Tensor) -> "UncheckedSquashedGaussian":
        # SB3's DiagGaussianDistribution.proba_distribution, with validate_args=False
        self.distribution = Normal(mean_actions, th.ones_like(mean_actions) * log_std.exp(), validate_args=False)
        return self


class SACAEActor(RefusePickledLoad, Actor):
    """
    SB3's SAC actor with SAC-AE's log-std parametrisation: tanh, then affinely into [LOG_STD_MIN, LOG_STD_MAX].

    Its features extractor is an :class:`Encoder` with ``detach_trunk=True``: the actor trains its own
    projection head, never the shared convs. The update samples from :class:`UncheckedSquashedGaussian` (gSDE
    actors from SB3's own distribution); ``predict()`` keeps SB3's, with torch's checks.
    """

    features_extractor: Encoder

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.update_dist: SquashedDiagGaussianDistribution | StateDependentNoiseDistribution = self.action_dist
        if type(self.action_dist) is SquashedDiagGaussianDistribution:
            self.update_dist = UncheckedSquashedGaussian(self.action_dist.action_dim, self.action_dist.epsilon)

    def get_action_dist_params(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        return self.dist_params_from_features(self.extract_features(obs, self.features_extractor))

    def dist_params_from_features(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        latent_pi = self.latent_pi(features)
        mean_actions = self.mu(latent_pi)
        if self.use_sde:
            return mean_actions, self.log_std, dict(latent_sde=latent_pi)
        log_std = th.tanh(self.log_std(latent_pi))  # type: ignore[operator]  # SB3 types log_std as Module | Parameter (a Linear without gSDE)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)
        return mean_actions, log_std, {}

    def action_log_prob_from_features(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Actions sampled for the update and their log-probabilities (:attr:`update_dist`)."""
        mean_actions, log_std, kwargs = self.dist_params_from_features(features)
        return self.update_dist.log_prob_from_params(mean_actions, log_std, **kwargs)

    def soft_value(
        self, features: th.Tensor, critic: BaseModel, critic_latent: th.Tensor, ent_coef: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        """
        One-sample estimate of the soft state value, min_i Q_i(s, a) - alpha log pi(a|s) with a ~ pi(.|s).

        :param features: the actor's latent of the states
        :param critic: the critic whose Q-heads value the sampled actions
        :param critic_latent: that critic's latent of the same states
        :param ent_coef: the entropy coefficient alpha
        :return: the value and log pi(a|s) of the sampled actions, both of shape (batch, 1)
        """
        actions, log_prob = self.action_log_prob_from_features(features)
        log_prob = log_prob.reshape(-1, 1)
        min_q = (
            cast("SACAECritic | DiscreteCritic", critic).q_at_actions(critic_latent, actions).min(dim=1, keepdim=True).values
        )
        return min_q - ent_coef * log_prob, log_prob


class SACAECritic(RefusePickledLoad, ContinuousCritic):
    """
    SB3's twin-Q critic, optionally with LayerNorm after each hidden Linear of the Q-heads (recent SAC practice for
    high replay ratios, e.g. Ball et al. 2023, arXiv:2302.02948).

    :param critic_layer_norm: insert LayerNorm between each hidden Linear and its activation
    """

    features_extractor: Encoder

    def __init__(self, *args: Any, critic_layer_norm: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.critic_layer_norm = critic_layer_norm
        if not critic_layer_norm:
            return
        for idx, q_net in enumerate(cast(list[nn.Sequential], self.q_networks)):
            layers: list[nn.Module] = []
            for layer in q_net:
                layers.append(layer)
                if isinstance(layer, nn.Linear) and layer is not q_net[-1]:
                    layers.append(nn.LayerNorm(layer.out_features))
            q_net_with_norm = nn.Sequential(*layers)
            self.add_module(f"qf{idx}", q_net_with_norm)
            self.q_networks[idx] = q_net_with_norm

    def q_at_actions(self, latent: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Q-values of every head for encoder latents (what ``critic(obs, actions)`` computes), shape (batch, n_critics)."""
        q_input = th.cat([latent, actions.to(latent.dtype)], dim=1)
        return th.cat([q_net(q_input) for q_net in self.q_networks], dim=1)


class SACAEPolicy(RefusePickledLoad, BasePolicy):
    """
    Policy of SAC-AE (Yarats et al. 2019, https://arxiv.org/abs/1910.01741).

    Gradient routing ("Who trains what" on the design page): ``trunk`` (also ``encoder``, the name in state dicts) is
    one conv trunk referenced by the actor's and the critic's features extractors; the critic loss and the
    reconstruction loss train it, the actor reads it detached and trains only its own projection head. ``critic_target`` is an
    independent copy of the whole critic, encoder included. The policy owns the decoder, so that ``policy.pth``
    carries it; the algorithm owns the encoder and decoder optimizers (``SACAE.encoder_optimizer``,
    ``SACAE.decoder_optimizer``), as it owns ``ent_coef_optimizer``.

    With a ``Discrete`` action space the actor is a :class:`~sb3_sacae.discrete.CategoricalActor` and the critic a
    :class:`~sb3_sacae.discrete.DiscreteCritic` (one Q-value per action, discrete SAC, arXiv:1910.07207), on the
    same encoders, decoder and optimizers.

    :param observation_space: Observation space (channel-first image)
    :param action_space: Action space (Box, or Discrete for discrete SAC)
    :param lr_schedule: Learning rate schedule of the actor and critic optimizers
    :param net_arch: hidden layers of the actor and critic MLPs (paper: [1024, 1024]); a dict with
        ``pi`` and ``qf`` keys sets them apart
    :param activation_fn: activation of the MLPs
    :param features_dim: size of the encoder latent (paper: 50)
    :param n_filters: filters per conv layer (paper: 32)
    :param n_conv_layers: conv layers of the encoder (paper: 4)
    :param normalize_images: divide pixels by 255 (True for uint8 images)
    :param channels_last: run convs and transposed convs in NHWC memory layout: same math, faster oneDNN kernels
    :param onednn_linear: run the float32 Linear layers on CPU (actor and critic MLPs, and the projection heads and
        decoder Linear outside ``bf16_autocast``) on oneDNN instead of the BLAS library: same float32 math, faster where
        the BLAS library is slow for these shapes (:class:`~sb3_sacae.accel.onednn.OneDNNLinear`; the speed page)
    :param fast_kernels: use the speed pieces of :mod:`sb3_sacae.accel` where they apply (``channels_last``,
        ``onednn_linear``, the decoder's transposed-conv backward and the sliced reconstruction loss); False builds
        plain torch layers only (``SACAE`` sets it from its ``fast_kernels`` argument)
    :param use_sde: Whether to use State Dependent Exploration or not (Box actions only)
    :param log_std_init: Initial value for the log standard deviation (gSDE only)
    :param use_expln: Use ``expln()`` instead of ``exp()`` for gSDE's standard deviation, so that it stays positive
        and grows slowly above zero (gSDE only)
    :param clip_mean: Clip the mean action into ``[-clip_mean, clip_mean]`` to avoid numerical instability
        (gSDE only; 0 turns the clipping off)
    :param full_std: One gSDE standard deviation per (feature, action) pair rather than per feature (gSDE only)
    :param optimizer_class: optimizer of actor, critic, encoder and decoder (paper: Adam)
    :param optimizer_kwargs: extra keyword arguments of the optimizers, excluding the learning rate;
        by default ``fused=True`` for Adam (one kernel per step, same update rule)
    :param n_critics: number of Q networks (paper: 2)
    :param critic_layer_norm: LayerNorm after each hidden layer of the Q-heads (not in the paper; helps at high
        replay ratios)
    :param use_decoder: build the decoder (False is the paper's "SAC:pixel"; ``SACAE`` sets it from
        ``decoder_update_interval``)
    """

    actor: SACAEActor | CategoricalActor
    critic: SACAECritic | DiscreteCritic
    critic_target: SACAECritic | DiscreteCritic
    decoder: Decoder | None

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box | spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_dim: int = 50,
        n_filters: int = 32,
        n_conv_layers: int = 4,
        normalize_images: bool = True,
        channels_last: bool = True,
        onednn_linear: bool = True,
        fast_kernels: bool = True,
        use_sde: bool = False,
        log_std_init: float = -3,
        use_expln: bool = False,
        clip_mean: float = 2.0,
        full_std: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        critic_layer_norm: bool = False,
        use_decoder: bool = True,
    ):
        self._setup_observation_space(observation_space, normalize_images)
        if int(features_dim) < 1:
            raise ValueError(f"features_dim must be >= 1, got {features_dim} (paper: 50)")
        if use_sde and not isinstance(action_space, spaces.Box):
            raise ValueError(f"gSDE (use_sde=True) needs continuous (Box) actions, got {action_space}: pass use_sde=False")
        if optimizer_kwargs is None and optimizer_class in (th.optim.Adam, th.optim.AdamW):
            optimizer_kwargs = {"fused": True}
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=isinstance(action_space, spaces.Box),
            normalize_images=normalize_images,
        )
        if net_arch is None:
            net_arch = [1024, 1024]
        self.net_arch = net_arch
        self.actor_arch, self.critic_arch = (
            (net_arch["pi"], net_arch["qf"]) if isinstance(net_arch, dict) else (list(net_arch), list(net_arch))
        )
        self.activation_fn = activation_fn
        self.features_dim = features_dim
        self.n_filters = n_filters
        self.n_conv_layers = n_conv_layers
        self.channels_last = channels_last
        self.onednn_linear = onednn_linear
        self.fast_kernels = fast_kernels
        self.use_sde = use_sde
        self.log_std_init = log_std_init
        self.use_expln = use_expln
        self.clip_mean = clip_mean
        self.full_std = full_std
        self.n_critics = n_critics
        self.critic_layer_norm = critic_layer_norm
        self.use_decoder = use_decoder
        self._build(lr_schedule)

    def _setup_observation_space(self, observation_space: spaces.Space, normalize_images: bool) -> None:
        """Raise a clear error for observation spaces this policy cannot read (CnnPolicy: channel-first images)."""
        check_image_space(observation_space, normalize_images)

    def _make_trunk(self) -> Trunk:
        """The shared trunk (one object for actor and critic): the conv layers of the pixel encoder."""
        return ConvTrunk(
            cast(spaces.Box, self.observation_space),
            self.n_filters,
            self.n_conv_layers,
            self.normalize_images,
            self._channels_last,
        )

    def _make_decoder(self) -> Decoder:
        """The decoder: the trunk's input image from the latent."""
        return self._pixel_decoder(cast(ConvTrunk, self.encoder), cast(spaces.Box, self.observation_space))

    def _pixel_decoder(self, trunk: ConvTrunk, space: spaces.Box) -> PixelDecoder:
        """The decoder of one image space; pre-normalised images are rescaled from its bounds for the 5-bit target."""
        pixel_range = None if self.normalize_images else (float(np.min(space.low)), float(np.max(space.high)))
        n_channels, height, width = space.shape
        return PixelDecoder(
            trunk, n_channels, (height, width), self.features_dim, self.n_filters, pixel_range, self.fast_kernels
        )

    @property
    def _channels_last(self) -> bool:
        """Whether the convs run in NHWC layout: ``channels_last``, unless ``fast_kernels`` is off."""
        return bool(self.channels_last and self.fast_kernels)

    @property
    def trunk(self) -> Trunk:
        """
        The shared trunk (conv layers, or the MLP of a state encoder): one module, read by the actor's and the
        critic's encoders. ``policy.encoder`` is the same object, and the name of its parameters in saved state dicts.
        """
        return self.encoder

    def _build(self, lr_schedule: Schedule) -> None:
        self.encoder = self._make_trunk()
        # SB3's own preprocessing must not divide by 255 a second time: the trunk does it
        net_kwargs = dict(observation_space=self.observation_space, action_space=self.action_space, normalize_images=False)
        if isinstance(self.action_space, spaces.Discrete):
            self._build_discrete_networks(net_kwargs)
        else:
            self._build_continuous_networks(net_kwargs)
        self.decoder = self._make_decoder() if self.use_decoder else None
        if self.onednn_linear and self.fast_kernels:
            use_onednn_linears(self)
        self.apply(weight_init)
        for module in self.modules():
            if isinstance(module, FlatOrdered):
                module.to_flat_order_()  # initialised in (C, H, W) order, as in earlier versions
        if self._channels_last:
            self.to(memory_format=th.channels_last)  # type: ignore[call-overload]  # conv weights only (stub lacks memory_format)
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_target.set_training_mode(False)
        self.to(self.device)

        lr = lr_schedule(1)
        self.critic.optimizer = self.make_optimizer(self.critic.parameters(), lr)
        shared = {id(param) for param in self.encoder.parameters()}
        self.actor.optimizer = self.make_optimizer([p for p in self.actor.parameters() if id(p) not in shared], lr)

    def make_optimizer(self, parameters: Iterable[th.Tensor], lr: float, **overrides: Any) -> th.optim.Optimizer:
        """
        An optimizer of ``optimizer_class`` with ``optimizer_kwargs`` (``overrides`` replacing some) over parameters of
        this policy: the actor's and critic's, and the algorithm's encoder and decoder optimizers.
        """
        # torch types optimizer_class as Optimizer, whose own __init__ takes no lr (every optimizer takes it)
        optimizer = self.optimizer_class(parameters, lr=lr, **{**self.optimizer_kwargs, **overrides})  # type: ignore[call-arg]  # torch types optimizer_class as Optimizer, whose __init__ takes no lr
        # Saved optimizer states hold the (C, H, W) order too, whatever channels_last is (see FlatOrdered)
        return OptimizerStateOrder(self).register(optimizer)

    def _build_continuous_networks(self, net_kwargs: dict[str, Any]) -> None:
        obs_space = self.observation_space
        self.critic = SACAECritic(
            **net_kwargs,
            net_arch=self.critic_arch,
            features_extractor=Encoder(obs_space, self.encoder, self.features_dim),
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
            n_critics=self.n_critics,
            share_features_extractor=False,  # SB3's flag would detach the critic: SAC-AE trains the convs with it
            critic_layer_norm=self.critic_layer_norm,
        )
        self.actor = SACAEActor(
            **net_kwargs,
            net_arch=self.actor_arch,
            features_extractor=Encoder(obs_space, self.encoder, self.features_dim, detach_trunk=True),
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
            use_sde=self.use_sde,
            log_std_init=self.log_std_init,
            use_expln=self.use_expln,
            clip_mean=self.clip_mean,
            full_std=self.full_std,
        )

    def _build_discrete_networks(self, net_kwargs: dict[str, Any]) -> None:
        # Discrete SAC (arXiv:1910.07207): the same two encoders, a categorical actor and one Q-value per action
        obs_space = self.observation_space
        self.critic = DiscreteCritic(
            **net_kwargs,
            net_arch=self.critic_arch,
            features_extractor=Encoder(obs_space, self.encoder, self.features_dim),
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
            n_critics=self.n_critics,
            critic_layer_norm=self.critic_layer_norm,
        )
        self.actor = CategoricalActor(
            **net_kwargs,
            net_arch=self.actor_arch,
            # SAC-AE: the actor must not move the shared convs; only critic and decoder train them
            features_extractor=Encoder(obs_space, self.encoder, self.features_dim, detach_trunk=True),
            features_dim=self.features_dim,
            activation_fn=self.activation_fn,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            dict(
                net_arch=self.net_arch,
                activation_fn=self.activation_fn,
                features_dim=self.features_dim,
                n_filters=self.n_filters,
                n_conv_layers=self.n_conv_layers,
                channels_last=self.channels_last,
                onednn_linear=self.onednn_linear,
                fast_kernels=self.fast_kernels,
                use_sde=self.use_sde,
                log_std_init=self.log_std_init,
                use_expln=self.use_expln,
                clip_mean=self.clip_mean,
                full_std=self.full_std,
                n_critics=self.n_critics,
                critic_layer_norm=self.critic_layer_norm,
                lr_schedule=self._dummy_schedule,  # not needed to load the policy alone
                optimizer_class=self.optimizer_class,
                optimizer_kwargs=self.optimizer_kwargs,
                use_decoder=self.use_decoder,
            )
        )
        data.pop("features_extractor_class", None)
        data.pop("features_extractor_kwargs", None)
        return data

    def reset_noise(self, batch_size: int = 1) -> None:
        if isinstance(self.actor, SACAEActor):  # gSDE's noise: Box actions only
            self.actor.reset_noise(batch_size=batch_size)

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs, deterministic=deterministic)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        return self.actor(observation, deterministic)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        images: dict[str | None, Any] = {None: observation} if isinstance(self.encoder, ConvTrunk) else {}
        if isinstance(self.encoder, MultiTrunk) and isinstance(observation, dict):
            images = {key: observation.get(key) for key in self.encoder.image_keys}
        for key, image in images.items():
            space = self.observation_space if key is None else cast(spaces.Dict, self.observation_space)[key]
            if isinstance(image, np.ndarray) and image.dtype != space.dtype:
                # Pre-normalised floats would be divided by 255 a second time: refuse instead of acting on garbage
                raise ValueError(
                    f"predict() got {'observations' if key is None else repr(key) + ' observations'} of dtype "
                    f"{image.dtype}, but the model was trained on {space.dtype} images: pass the raw frames as the "
                    "environment returns them (with the same wrappers as in training)"
                )
        return super().predict(observation, state, episode_start, deterministic)

    def set_training_mode(self, mode: bool) -> None:
        self.actor.set_training_mode(mode)
        self.critic.set_training_mode(mode)
        if self.decoder is not None:
            self.decoder.train(mode)
        self.training = mode


def _check_mlp_arch(mlp_encoder_arch: list[int] | None) -> list[int]:
    arch = [256, 256] if mlp_encoder_arch is None else [int(size) for size in mlp_encoder_arch]
    if any(size < 1 for size in arch):
        raise ValueError(f"mlp_encoder_arch must list positive layer sizes (or be [] for no hidden layer), got {arch}")
    return arch


class MlpPolicy(SACAEPolicy):
    """
    SAC-AE on state vectors: the conv trunk becomes an MLP trunk and the decoder an MLP that reconstructs the
    state itself (the observation the encoder reads, so VecNormalize-normalised when used; MSE, no 5-bit
    quantisation). Same projection heads, tying, target critic, optimizers and gradient routing as ``CnnPolicy``.

    :param mlp_encoder_arch: hidden layers of the MLP trunk, each Linear -> ReLU (default [256, 256]; not in the
        paper); the decoder mirrors them in reverse order. ``[]`` feeds the state straight into the projection heads
    :param kwargs: the arguments of :class:`SACAEPolicy` (``n_filters``, ``n_conv_layers`` and ``channels_last`` are
        unused; ``normalize_images`` divides uint8 image observations, read as flat vectors, by 255, as SB3's
        ``MlpPolicy`` does, and the decoder then reconstructs them on that scale)
    """

    def __init__(self, *args: Any, mlp_encoder_arch: list[int] | None = None, **kwargs: Any):
        self.mlp_encoder_arch = _check_mlp_arch(mlp_encoder_arch)
        super().__init__(*args, **kwargs)

    def _setup_observation_space(self, observation_space: spaces.Space, normalize_images: bool) -> None:
        if not isinstance(observation_space, spaces.Box):
            raise ValueError(
                f"SACAE's MlpPolicy needs a Box observation space (state vectors), got {observation_space}: use "
                "MultiInputPolicy for Dict observations, or flatten with gymnasium.wrappers.FlattenObservation"
            )

    @property
    def _state_scale(self) -> float:
        """1 / 255 for uint8 images with ``normalize_images`` (SB3's ``preprocess_obs``), else 1."""
        return 1.0 / 255.0 if self.normalize_images and is_image_space(self.observation_space) else 1.0

    def _make_trunk(self) -> Trunk:
        return MlpTrunk(int(np.prod(self.observation_space.shape or ())), self.mlp_encoder_arch, self._state_scale)

    def _make_decoder(self) -> Decoder:
        n_output = int(np.prod(self.observation_space.shape or ()))
        return MlpDecoder(self.features_dim, n_output, self.mlp_encoder_arch, self._state_scale)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "mlp_encoder_arch": self.mlp_encoder_arch}


class MultiInputPolicy(SACAEPolicy):
    """
    SAC-AE on Dict observations: a conv trunk per encoded image key (3D Box, channel-first at the policy: SB3's
    VecTransposeImage moves the channels of uint8 images) and one MLP trunk over the encoded vector keys, their
    features concatenated before the projection heads. The decoder reconstructs each decoded key: image keys to
    the 5-bit target of ``CnnPolicy``, vector keys to the values themselves (MSE); the losses are summed.

    Encoding a key that looks like the simulator state (``STATE_LIKE_KEY_PARTS``: "state", "position", "qpos",
    ...) next to an image key warns, unless ``encoder_keys`` is given explicitly: a "from pixels" result that
    also reads the state is a state result (e.g. ``AddRenderObservation(render_only=False)``, or dm_control with
    ``pixels_only=False``).

    :param encoder_keys: keys the encoder reads (default: every key; each must be a Box)
    :param decoder_keys: keys the decoder reconstructs, a subset of ``encoder_keys`` (default: the encoded image
        keys, or every encoded key when none is an image)
    :param mlp_encoder_arch: hidden layers of the MLP trunk of the vector keys (default [256, 256]); the vector
        decoders mirror them
    :param kwargs: the arguments of :class:`SACAEPolicy` (``n_filters``, ``n_conv_layers``, ... apply to every
        image key)
    """

    encoder: MultiTrunk

    def __init__(
        self,
        *args: Any,
        encoder_keys: list[str] | None = None,
        decoder_keys: list[str] | None = None,
        mlp_encoder_arch: list[int] | None = None,
        **kwargs: Any,
    ):
        self.encoder_keys = None if encoder_keys is None else [str(key) for key in encoder_keys]
        self.decoder_keys = None if decoder_keys is None else [str(key) for key in decoder_keys]
        self.mlp_encoder_arch = _check_mlp_arch(mlp_encoder_arch)
        super().__init__(*args, **kwargs)

    def _setup_observation_space(self, observation_space: spaces.Space, normalize_images: bool) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(
                f"SACAE's MultiInputPolicy needs a Dict observation space, got {observation_space}: use CnnPolicy "
                "for images and MlpPolicy for state vectors"
            )
        keys = list(observation_space.spaces)
        for name, chosen in (("encoder_keys", self.encoder_keys), ("decoder_keys", self.decoder_keys)):
            unknown = sorted(set(chosen or []) - set(keys))
            if unknown:
                raise ValueError(f"{name} {unknown} are not keys of the observation space; its keys are {keys}")
        if self.encoder_keys is not None and not self.encoder_keys:
            raise ValueError(f"encoder_keys is empty: choose at least one of {keys}")
        # The space's key order, whatever the order of the user's list: the features layout never depends on it
        encoded = [key for key in keys if self.encoder_keys is None or key in self.encoder_keys]
        for key in encoded:
            space = observation_space[key]
            if not isinstance(space, spaces.Box):
                raise ValueError(
                    f"MultiInputPolicy encodes Box keys only, but {key!r} is {space}: leave it out of encoder_keys, "
                    "or turn it into a Box with a wrapper"
                )
            if len(space.shape) == 3:
                check_image_space(space, normalize_images, where=f"MultiInputPolicy (key {key!r})")
        image_keys = [key for key in encoded if len(observation_space[key].shape or ()) == 3]
        vector_keys = [key for key in encoded if key not in image_keys]
        state_like = [key for key in vector_keys if any(part in key.lower() for part in STATE_LIKE_KEY_PARTS)]
        if self.encoder_keys is None and image_keys and state_like:
            warnings.warn(
                f"MultiInputPolicy encodes the image key(s) {image_keys} together with {state_like}, whose name looks "
                "like the simulator state: a result 'from pixels' would also read the state. Pass "
                f"policy_kwargs=dict(encoder_keys={image_keys}) to learn from pixels only, or list every key you mean "
                f"to encode (e.g. encoder_keys={encoded}) to keep them and silence this warning",
                UserWarning,
                stacklevel=4,
            )
        decoded = (image_keys or encoded) if self.decoder_keys is None else [key for key in keys if key in self.decoder_keys]
        not_encoded = [key for key in decoded if key not in encoded]
        if not_encoded:
            raise ValueError(
                f"decoder_keys {not_encoded} are not encoded: the decoder reconstructs keys the encoder reads; add them "
                f"to encoder_keys (now {encoded}) or leave them out of decoder_keys"
            )
        self.encoder_keys, self.decoder_keys = encoded, decoded
        self.image_keys, self.vector_keys = image_keys, vector_keys

    def _make_trunk(self) -> Trunk:
        return MultiTrunk(
            cast(spaces.Dict, self.observation_space),
            self.image_keys,
            self.vector_keys,
            self.n_filters,
            self.n_conv_layers,
            self.normalize_images,
            self._channels_last,
            self.mlp_encoder_arch,
        )

    def _make_decoder(self) -> Decoder:
        if not self.decoder_keys:
            raise ValueError("decoder_keys is empty: choose keys to reconstruct, or pass decoder_update_interval=0 to SACAE")
        decoders: dict[str, Decoder] = {}
        for key in self.decoder_keys:
            if key in self.image_keys:
                space = cast(spaces.Box, cast(spaces.Dict, self.observation_space)[key])
                decoders[key] = self._pixel_decoder(cast(ConvTrunk, self.encoder.image_trunks[key]), space)
            else:
                shape = cast(spaces.Dict, self.observation_space)[key].shape
                decoders[key] = MlpDecoder(self.features_dim, int(np.prod(shape or ())), self.mlp_encoder_arch)
        return MultiDecoder(decoders)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "encoder_keys": self.encoder_keys,
            "decoder_keys": self.decoder_keys,
            "mlp_encoder_arch": self.mlp_encoder_arch,
        }


CnnPolicy = SACAEPolicy
