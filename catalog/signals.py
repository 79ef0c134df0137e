"""Keeps denormalized catalog fields right on writes that bypass the services: a user renamed,
or reviews deleted (by hand, or by CASCADE when a user or product goes)."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from catalog.models import Review
from catalog.services import author_username_sync, product_rating_refresh


@receiver(post_save, sender=get_user_model(), dispatch_uid="catalog.author_username_sync")
def _sync_author_username(sender, instance, created, update_fields=None, **kwargs) -> None:
    if created:
        return
    # Logins save only last_login: skip the extra UPDATE when the username cannot have changed.
    if update_fields is not None and "username" not in update_fields:
        return
    author_username_sync(user_id=instance.pk, username=instance.get_username())


@receiver(post_delete, sender=Review, dispatch_uid="catalog.product_rating_refresh")
def _refresh_rating_after_delete(sender, instance, **kwargs) -> None:
    product_rating_refresh(product_id=instance.product_id)
